"""Re-run on change: edited, new and deleted scripts, in the local and the received dir."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from reflex_agent.daemon import Agent
from reflex_core.protocol import Status
from reflex_hub import HubHandle

from .agent_harness import (
    OPERATOR,
    agent_bus,
    has_test,
    make_config,
    observing,
    result_of,
    running,
    upload,
)
from .agent_harness import write_script as write

pytestmark = pytest.mark.timeout(60)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_edit_new_and_delete(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600)  # only the first round runs
    scripts = config.scripts
    write(scripts, "edit.sh", "echo 1\n")
    write(scripts, "keep.sh", "echo keep\n")
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            await observer.state()
            first = await observer.results(has_test("edit"))
            assert result_of(first, "edit").value == 1

            # Edited: that one script runs at once and its result comes alone.
            saved = time.time()
            path = write(scripts, "edit.sh", "echo 2; exit 2\n")
            edited = await observer.results(has_test("edit"))
            assert [r.test for r in edited.results] == ["edit"]
            result = edited.results[0]
            assert (result.value, result.status) == (2, Status.CRITICAL)
            assert edited.seq > first.seq and edited.ts >= saved
            state = await observer.state()
            assert ("edit", "edit.sh", sha(path)) in {
                (s.test, s.file, s.sha256) for s in state.scripts
            }

            # New: runs at once, and `state` lists it.
            write(scripts, "new.py", "print('new 7')\n")
            created = await observer.results(has_test("new"))
            assert [r.test for r in created.results] == ["new"]
            state = await observer.state(lambda s: "new" in {e.test for e in s.scripts})
            assert {e.test for e in state.scripts} == {"edit", "keep", "new"}

            # Deleted: dropped from `state`.
            (scripts / "new.py").unlink()
            state = await observer.state(lambda s: "new" not in {e.test for e in s.scripts})
            assert {e.test for e in state.scripts} == {"edit", "keep"}

            # Not checks: a backup, a dotfile, a README: no run, no state change.
            write(scripts, "edit.sh~", "echo backup\n")
            write(scripts, ".hidden.sh", "echo hidden\n")
            write(scripts, "README", "docs\n")
            write(scripts, "edit.sh", "echo 3\n")  # a sentinel after them
            last = await observer.results(has_test("edit"))
            assert result_of(last, "edit").value == 3

    seen = {r.test for m in observer.messages if hasattr(m, "results") for r in m.results}
    assert seen == {"edit", "keep", "new"}


async def test_received_script_shadows_local_one(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    write(config.scripts, "cpu.sh", "echo local 1\n")
    received = config.scripts / "received"
    # A signed upload waiting on config_chan (a file dropped into received/ by hand would be
    # removed: the agent runs only received scripts whose signature it verified).
    async with agent_bus(config, user_id="dashboard") as dashboard:
        await upload(dashboard, config.config_chan, "cpu.sh", b"echo received 2\n")
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            state = await observer.state()
            assert [(s.test, s.file) for s in state.scripts] == [("cpu", "received/cpu.sh")]
            first = await observer.results(has_test("cpu"))
            assert result_of(first, "cpu").output == "received 2"

            # Editing the shadowed local file runs nothing...
            write(config.scripts, "cpu.sh", "echo local 3\n")
            # ...removing the received one brings the local one back, and runs it.
            (received / "cpu.sh").unlink()
            back = await observer.results(has_test("cpu"))
            assert result_of(back, "cpu").output == "local 3"
            state = await observer.state(lambda s: s.scripts and s.scripts[0].file == "cpu.sh")
            assert [(s.test, s.file) for s in state.scripts] == [("cpu", "cpu.sh")]


async def test_bad_local_test_name_is_reported_not_run(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600)
    write(config.scripts, "a,b.sh", "echo x\n")
    write(config.scripts, "ok.sh", "echo ok\n")
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            state = await observer.state()
            message = await observer.results()
    assert [s.test for s in state.scripts] == ["ok"]
    assert [r.file for r in state.rejected] == ["a,b.sh"]
    assert state.rejected[0].reason.startswith("bad name:")
    assert [r.test for r in message.results] == ["ok"]
