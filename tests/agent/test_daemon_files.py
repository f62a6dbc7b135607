"""Scripts from `config_chan` reaching a running agent: they land, run, and hostile ones don't.

Uploads are signed with the operator key the agent trusts, as the dashboard sends them
(signature refusals: test_signed_scripts.py).
"""

from __future__ import annotations

import stat
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
from .test_sync import HOSTILE, inject, tree

pytestmark = pytest.mark.timeout(60)


async def test_sent_files_land_and_run(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    dashboard = agent_bus(config, user_id="dashboard")
    await dashboard.start()
    try:
        # Uploaded while the agent was away: fetched (and verified by its sidecar) by the
        # start-up listing.
        await upload(dashboard, config.config_chan, "early.sh", b"echo 'EARLY OK | v=1'\n")
        async with observing(hub.origin, config.device_id) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
                assert [(s.test, s.file) for s in state.scripts] == [("early", "received/early.sh")]
                first = await observer.results(has_test("early"))
                assert result_of(first, "early").output == "EARLY OK"

                # Sent live: lands, runs at once, `state` lists it.
                await upload(
                    dashboard,
                    config.config_chan,
                    "net.py",
                    b"print('NET WARN | x=3;1;5')\nraise SystemExit(1)\n",
                )
                ran = await observer.results(has_test("net"))
                net = result_of(ran, "net")
                assert (net.status, net.value, net.output) == (Status.WARNING, 3, "NET WARN")
                state = await observer.state(lambda s: "net" in {e.test for e in s.scripts})
                assert ("net", "received/net.py") in {(e.test, e.file) for e in state.scripts}

                # A new upload of the same name replaces it.
                await upload(dashboard, config.config_chan, "net.py", b"print('NET OK')\n")
                again = await observer.results(
                    lambda m: has_test("net")(m) and result_of(m, "net").output == "NET OK"
                )
                assert result_of(again, "net").status is Status.OK
    finally:
        await dashboard.close()
    received = config.scripts / "received"
    assert sorted(p.name for p in received.iterdir()) == ["early.sh", "net.py"]
    assert not stat.S_IMODE((received / "net.py").stat().st_mode) & 0o111


async def test_refused_files_are_reported_and_never_written(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    write_outside = tmp_path / "etc"
    write_outside.mkdir()
    # Names no client can upload (the hub refuses them, as PubNub does) are put in place
    # directly; the agent must refuse them anyway.
    for name, _ in HOSTILE[:6]:
        await inject(hub, name, b"echo pwned\n")
    await inject(hub, "huge.sh", b"echo big\n", size=6 * 1024 * 1024)
    before = tree(tmp_path)
    dashboard = agent_bus(config, user_id="dashboard")
    await dashboard.start()
    try:
        async with observing(hub.origin, config.device_id) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
                at_start = {r.file for r in state.rejected}
                # And live: names a client can upload, refused when the event arrives even
                # though they are signed by the trusted key.
                chan = config.config_chan
                await upload(dashboard, chan, ".hidden.py", b"print(1)\n")
                await upload(dashboard, chan, "x.exe", b"MZ\n")
                await upload(dashboard, chan, "a\\b.py", b"print(1)\n")  # again
                await upload(dashboard, chan, "ok.sh", b"echo fine\n")
                await observer.results(has_test("ok"))
                state = await observer.state(lambda s: len(s.rejected) == 9 and bool(s.scripts))
    finally:
        await dashboard.close()

    expected = {name for name, _ in HOSTILE[:6]} | {"huge.sh"}
    assert at_start == expected
    reasons = {r.file: r.reason for r in state.rejected}
    assert set(reasons) == expected | {".hidden.py", "x.exe"}
    assert reasons["huge.sh"].startswith("too large:")
    assert reasons["x.exe"].startswith("bad name:")
    assert [(s.test, s.file) for s in state.scripts] == [("ok", "received/ok.sh")]
    created = tree(tmp_path) - before
    assert created <= {
        "scripts/received",
        "scripts/received/ok.sh",
        f"state/{config.device_id}.json",
    }
    assert list(write_outside.iterdir()) == []
