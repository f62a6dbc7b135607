"""Commands on `ignore_chan` through a real hub: for us, for "*", for others, legacy, garbage."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reflex_agent.daemon import Agent
from reflex_core.config import LOCAL_PUB_KEY, LOCAL_SUB_KEY
from reflex_core.protocol import ResultsMessage, StateMessage
from reflex_hub import HubHandle

from .agent_harness import (
    Observer,
    agent_bus,
    has_test,
    make_config,
    observing,
    running,
    write_script,
)

pytestmark = pytest.mark.timeout(60)

ME = "web1-test"


def v1(kind: str, target: str = ME, **fields: object) -> dict[str, object]:
    return {"v": 1, "kind": kind, "target": target, **fields}


async def sentinel(observer: Observer, tag: int) -> StateMessage:
    """A command for us that produces a recognisable `state`: everything sent before it has
    been handled by then (commands are handled in order)."""
    await observer.command(v1("set_interval", interval=1000 + tag))
    return await observer.state(lambda s: s.interval == 1000 + tag)


async def test_commands_for_this_device_and_for_all(
    tmp_path: Path, hub: HubHandle, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600)
    for name in ("cpu", "disk", "load"):
        write_script(config.scripts, f"{name}.sh", f"echo {name}\n")
    reader = agent_bus(config)
    await reader.start()
    async with observing(hub.origin, ME) as observer:
        async with running(Agent(config, bus=agent_bus(config))) as agent:
            await observer.state()
            await observer.results(lambda m: len(m.results) == 3)

            # set_ignore for us: persisted in App Context and the state file, then `state`.
            await observer.command(v1("set_ignore", ignore=["CPU", "disk"]))
            state = await observer.state(lambda s: s.ignored == ("cpu", "disk"))
            meta = await reader.get_uuid_metadata(ME)
            assert meta is not None and meta.custom == {"ignore": "cpu,disk", "interval": 3600}
            saved = json.loads((config.state_dir / f"{ME}.json").read_text())
            assert (saved["ignored"], saved["interval"]) == (["cpu", "disk"], 3600)

            # refresh for "*": `state`, and a round without the ignored tests.
            await observer.command(v1("refresh", target="*"))
            await observer.state(lambda s: s.ts > state.ts)
            refreshed = await observer.results()
            assert [r.test for r in refreshed.results] == ["load"]

            # run_now one test (even an ignored one is not run), and every test.
            await observer.command(v1("run_now", test="LOAD"))
            single = await observer.results()
            assert [r.test for r in single.results] == ["load"]
            await observer.command(v1("run_now", target="*", test="cpu"))
            await observer.command(v1("run_now", test="nosuch"))
            await observer.command(v1("run_now"))
            every = await observer.results()
            assert [r.test for r in every.results] == ["load"]

            # set_interval: at once (the next round comes within the new interval).
            await observer.command(v1("set_interval", interval=1))
            await observer.state(lambda s: s.interval == 1)
            tick = await observer.results(lambda m: m.interval == 1 and len(m.results) == 1)
            following = await observer.results(lambda m: m.seq > tick.seq and m.interval == 1)
            assert following.ts - tick.ts == pytest.approx(1.0, abs=0.5)
            meta = await reader.get_uuid_metadata(ME)
            assert meta is not None and meta.custom == {"ignore": "cpu,disk", "interval": 1}

            await observer.command(v1("set_ignore", target="*", ignore=[]))
            await observer.state(lambda s: s.ignored == ())
            assert agent.settings.ignore == ()
    await reader.close()
    assert "run_now: no script for test 'nosuch'" in caplog.text


async def test_other_devices_legacy_shapes_and_garbage(
    tmp_path: Path, hub: HubHandle, caplog: pytest.LogCaptureFixture, make_pubnub: Any
) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600)
    write_script(config.scripts, "cpu.sh", "echo cpu\n")
    write_script(config.scripts, "disk.sh", "echo disk\n")
    caplog.set_level(logging.INFO, logger="reflex_agent")
    async with observing(hub.origin, ME) as observer:
        async with running(Agent(config, bus=agent_bus(config))) as agent:
            await observer.state()
            await observer.results()

            # For another device: no effect at all (checked after a later command of ours).
            await observer.command(v1("set_ignore", target="web2", ignore=["cpu"]))
            await observer.command(v1("set_interval", target="web1", interval=5))
            await observer.command({"host": "web2.test", "ignore": "disk"})
            await observer.command({"host": "other", "command": "refresh"})
            done = await sentinel(observer, 1)
            assert done.ignored == ()
            between = [m for m in observer.messages if isinstance(m, StateMessage)]
            assert all(m.ignored == () for m in between)

            # The seed's shapes, host by real name (any case) or id.
            await observer.command({"host": "WEB1.test", "ignore": "Disk, CPU"})
            await observer.state(lambda s: s.ignored == ("cpu", "disk"))
            await observer.command({"host": ME, "ignore": ""})
            await observer.state(lambda s: s.ignored == ())
            await observer.command({"host": "web1.test", "command": "refresh"})
            await observer.results(lambda m: len(m.results) == 2)

            # Garbage: one warning each, and the agent carries on.
            caplog.clear()
            garbage: list[object] = [
                "refresh",
                [1, 2],
                {"v": 1, "kind": "reboot", "target": ME},
                v1("set_interval", interval=0),
                v1("set_interval", interval=10**9),
                # 10,000 names do not fit in one PubNub message; 3,000 are still too many.
                v1("set_ignore", ignore=[str(i) for i in range(3000)]),
                v1("set_ignore", ignore="cpu"),
                {"host": ME, "command": "format disk"},
                {"v": 2, "kind": "refresh", "target": ME},
            ]
            # The facade only publishes objects; the raw SDK sends anything JSON.
            raw = make_pubnub(hub, "raw", publish_key=LOCAL_PUB_KEY, subscribe_key=LOCAL_SUB_KEY)
            for payload in garbage:
                envelope = await raw.publish().channel("ignore").message(payload).future()
                assert not envelope.is_error()
            done = await sentinel(observer, 2)
            assert done.ignored == () and agent.settings.interval == 1002
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.message
    ]
    assert len(warnings) == len(garbage)
    assert all("\n" not in r.getMessage() for r in warnings)
    results = [m for m in observer.messages if isinstance(m, ResultsMessage)]
    assert all(has_test("cpu")(m) for m in results)  # never ignored by someone else's command
