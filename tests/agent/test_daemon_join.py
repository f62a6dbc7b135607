"""`join` against a real hub: registration, `state`, rounds, parsing, and slow checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reflex_agent.daemon import Agent, round_patience
from reflex_core.protocol import Status
from reflex_hub import HubHandle

from .agent_harness import (
    agent_bus,
    free_port,
    has_test,
    make_config,
    observing,
    result_of,
    running,
    wait_queued,
    write_script,
)

pytestmark = pytest.mark.timeout(60)

PLUGIN = """\
echo "DISK OK - free space: / 3326 MB (56%) | /=2643MB;5948;5958;0;5968 'inodes used'=12%;80;90"
echo "long output line 1"
exit 0
"""
BARE = "echo 42.5\n"
WARN = "echo 'LOAD WARNING | load1=7.1;5;10;0'; exit 1\n"


async def test_join_registers_and_publishes_state(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=60)
    write_script(config.scripts, "disk.sh", PLUGIN)
    write_script(config.scripts, "README.md", "not a check")
    dashboard = agent_bus(config)  # any client will do for App Context reads
    await dashboard.start()
    try:
        # The seed's custom form, plus a key someone else keeps there.
        await dashboard.set_uuid_metadata(
            "web1-test", name="old name", custom={"ignore": "Swap, LOAD", "interval": "7", "x": 1}
        )
        async with observing(hub.origin, config.device_id) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
                members = await dashboard.get_channel_members(config.channel)
                meta = await dashboard.get_uuid_metadata("web1-test")
                online = await dashboard.here_now(config.ignore_chan)
    finally:
        await dashboard.close()

    assert (state.host, state.id) == ("Web1.Test", "web1-test")
    assert state.interval == 7 and state.ignored == ("load", "swap")
    sha = hashlib.sha256((config.scripts / "disk.sh").read_bytes()).hexdigest()
    assert [(s.test, s.file, s.sha256) for s in state.scripts] == [("disk", "disk.sh", sha)]
    assert state.rejected == ()
    assert [m.uuid for m in members] == ["web1-test"]
    assert meta is not None and meta.name == "Web1.Test"
    assert meta.custom == {"ignore": "load,swap", "interval": 7, "x": 1}
    assert "web1-test" in online
    assert (config.scripts / "received").is_dir()


async def test_rounds_parse_plugin_and_bare_number_output(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=1, ignore_list=("ignored",))
    write_script(config.scripts, "disk.sh", PLUGIN)
    write_script(config.scripts, "temp.sh", BARE)
    write_script(config.scripts, "load.sh", WARN)
    write_script(config.scripts, "ignored.sh", "echo never\n")
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            first = await observer.results(lambda m: len(m.results) == 3)
            second = await observer.results(lambda m: m.seq > first.seq and len(m.results) == 3)

    assert {r.test for r in first.results} == {"disk", "temp", "load"}  # one message per round
    assert second.seq > first.seq and second.ts >= first.ts + 0.5
    assert first.interval == 1 and first.host == "Web1.Test" and first.id == "web1-test"
    disk = result_of(first, "disk")
    assert disk.status is Status.OK and disk.code == 0
    assert disk.output == "DISK OK - free space: / 3326 MB (56%)"
    assert disk.long_output == "long output line 1"
    assert (disk.value, disk.unit) == (2643, "MB")
    assert [(p.label, p.value, p.uom, p.warn, p.crit, p.min, p.max) for p in disk.perf] == [
        ("/", 2643, "MB", "5948", "5958", 0, 5968),
        ("inodes used", 12, "%", "80", "90", None, None),
    ]
    temp = result_of(first, "temp")
    assert (temp.status, temp.value, temp.output, temp.perf) == (Status.OK, 42.5, "42.5", ())
    load = result_of(first, "load")
    assert (load.status, load.code, load.value) == (Status.WARNING, 1, 7.1)
    assert all(r.ts >= first.ts and r.duration_ms >= 0 for r in first.results)


async def test_a_hanging_check_does_not_hold_back_the_others(
    tmp_path: Path, hub: HubHandle
) -> None:
    config = make_config(tmp_path, hub.origin, interval=1, timeout=2.0)
    write_script(config.scripts, "fast.sh", "echo fast\n")
    write_script(config.scripts, "hang.sh", "sleep 30\n")
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            # While hang.sh waits out its 2 s timeout, fast.sh keeps reporting every round.
            first = await observer.results(has_test("fast"))
            second = await observer.results(lambda m: has_test("fast")(m) and m.seq > first.seq)
            timed_out = await observer.results(has_test("hang"))

    assert not has_test("hang")(first) and not has_test("hang")(second)
    assert second.ts - first.ts == pytest.approx(1.0, abs=0.5)  # the schedule held
    hang = result_of(timed_out, "hang")
    assert hang.status is Status.UNKNOWN and hang.output == "timed out after 2 s"
    assert [r.test for r in timed_out.results] == ["hang"]  # reported on its own


async def test_failing_and_odd_checks_never_stop_a_round(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin, interval=30, timeout=3.0)
    scripts = config.scripts
    write_script(scripts, "ok.sh", "echo fine\n")
    write_script(scripts, "flood.sh", "head -c 3000000 /dev/zero | tr '\\0' x; echo\n")
    write_script(scripts, "binary.sh", b"printf 'caf\\351 \\377\\n'\n")
    write_script(scripts, "oom.sh", "kill -9 $$\n")
    write_script(scripts, "crash.py", "raise SystemExit(137)\n")
    write_script(scripts, "noexec", "#!/bin/sh\necho hi\n", mode=0o755)
    write_script(scripts, "badshebang", "#!/nonexistent/interp\n", mode=0o755)
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            message = await observer.results(lambda m: len(m.results) == 7)

    status = {r.test: (r.status, r.output) for r in message.results}
    assert status["ok"] == (Status.OK, "fine")
    assert status["flood"][0] is Status.OK and len(status["flood"][1]) <= 512
    assert status["binary"] == (Status.OK, "caf\ufffd \ufffd")
    assert status["oom"][0] is Status.UNKNOWN and "signal 9" in status["oom"][1]
    assert status["crash"][0] is Status.UNKNOWN and "137" in status["crash"][1]
    assert status["noexec"] == (Status.OK, "hi")
    assert status["badshebang"][0] is Status.UNKNOWN
    assert "interpreter not found" in status["badshebang"][1]


async def test_agent_starts_and_buffers_while_the_hub_is_down(tmp_path: Path) -> None:
    """Nothing listens on the origin: the agent still runs its rounds and stops cleanly."""
    config = make_config(tmp_path, f"127.0.0.1:{free_port()}", interval=1)
    write_script(config.scripts, "fast.sh", "echo fast\n")
    agent = Agent(config, bus=agent_bus(config))
    async with running(agent):
        await wait_queued(agent, 3)
    assert len(agent.outbox) >= 3  # state + rounds, kept for later
    assert (config.state_dir / "web1-test.json").is_file()  # settings still persisted locally


@pytest.mark.parametrize(("interval", "patience"), [(1, 0.9), (2, 1.8), (10, 5.0), (3600, 5.0)])
def test_round_patience_stays_below_the_interval(interval: int, patience: float) -> None:
    assert round_patience(interval) == pytest.approx(patience)
