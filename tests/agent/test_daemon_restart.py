"""What survives: settings across agent restarts, results across a hub outage."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reflex_agent.daemon import Agent
from reflex_core.protocol import ResultsMessage, StateMessage
from reflex_hub import HubHandle

from .agent_harness import (
    RestartableHub,
    agent_bus,
    has_test,
    make_config,
    observing,
    running,
    wait_queued,
    write_script,
)

pytestmark = pytest.mark.timeout(60)

ME = "web1-test"


async def test_ignore_and_interval_survive_a_restart(
    tmp_path: Path, hub: HubHandle, hub_factory: object
) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600)
    write_script(config.scripts, "cpu.sh", "echo cpu\n")
    write_script(config.scripts, "disk.sh", "echo disk\n")
    async with observing(hub.origin, ME) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            await observer.state()
            await observer.command({"v": 1, "kind": "set_ignore", "target": ME, "ignore": ["cpu"]})
            await observer.command({"v": 1, "kind": "set_interval", "target": ME, "interval": 5})
            await observer.state(lambda s: s.interval == 5 and s.ignored == ("cpu",))

        # Restart on the same hub: App Context has them.
        observer.skip_all()
        async with running(Agent(config, bus=agent_bus(config))):
            state = await observer.state()
            first = await observer.results()
    assert (state.ignored, state.interval) == (("cpu",), 5)
    assert [r.test for r in first.results] == ["disk"] and first.interval == 5

    # A new, empty hub (App Context lost): the local state file has them, and the agent
    # writes them back to App Context on join.
    fresh: HubHandle = await hub_factory(memory=True)  # type: ignore[operator]
    moved = make_config(tmp_path, fresh.origin, interval=3600)
    async with observing(fresh.origin, ME) as observer:
        async with running(Agent(moved, bus=agent_bus(moved))):
            state = await observer.state()
            reader = agent_bus(moved, user_id="reader")
            await reader.start()
            meta = await reader.get_uuid_metadata(ME)
            await reader.close()
    assert (state.ignored, state.interval) == (("cpu",), 5)
    assert meta is not None and meta.custom == {"ignore": "cpu", "interval": 5}


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[RestartableHub]:
    hub = RestartableHub(tmp_path / "hub-data")
    await hub.start()
    yield hub
    await hub.stop()


async def test_results_buffered_through_a_hub_outage_arrive_in_order(
    tmp_path: Path, restartable: RestartableHub
) -> None:
    config = make_config(tmp_path, restartable.origin, interval=1)
    write_script(config.scripts, "tick.sh", "echo tick\n")
    agent = Agent(config, bus=agent_bus(config))
    async with observing(restartable.origin, ME) as observer:
        async with running(agent):
            before = await observer.results(has_test("tick"))

            await restartable.stop()
            # Rounds go on while the hub is down; their results wait in the outbox.
            await wait_queued(agent, 3)
            back_at = time.time()
            await restartable.start()

            last_buffered = agent._seq - 1
            await observer.results(lambda m: m.seq > last_buffered, within=20)

    results = [m for m in observer.messages if isinstance(m, ResultsMessage)]
    seqs = [m.seq for m in results]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # in order, no duplicates
    assert seqs == list(range(seqs[0], seqs[-1] + 1))  # and no gaps
    buffered = [m for m in results if before.seq < m.seq <= last_buffered]
    assert len(buffered) >= 2
    assert all(m.ts < back_at for m in buffered)  # original round times, not send times
    assert all(a.ts < b.ts for a, b in zip(results, results[1:], strict=False))


async def test_settings_changed_while_offline_are_adopted_when_the_hub_returns(
    tmp_path: Path, restartable: RestartableHub
) -> None:
    config = make_config(tmp_path, restartable.origin, interval=3600)
    write_script(config.scripts, "cpu.sh", "echo cpu\n")
    dashboard = agent_bus(config, user_id="dashboard")
    await dashboard.start()
    await dashboard.set_uuid_metadata(ME, name="Web1.Test", custom={"ignore": "cpu", "interval": 7})
    await dashboard.close()
    # The observer stays subscribed through the outage and catches up from its cursor.
    async with observing(restartable.origin, ME) as observer:
        await restartable.stop()
        agent = Agent(config, bus=agent_bus(config))
        async with running(agent):
            await wait_queued(agent, 1)  # started offline: config settings, `state` queued
            assert (agent.settings.ignore, agent.settings.interval) == ((), 3600)
            await restartable.start()
            state = await observer.state(lambda s: s.interval == 7, within=20)
    assert state.ignored == ("cpu",)
    assert [m.interval for m in observer.messages if isinstance(m, StateMessage)] == [3600, 7]
