"""The hub is SIGKILLed and restarted on the same data dir while three agents and a
dashboard run (issue 7, Reliability, first item).

Why: a hub (or PubNub region) that dies must cost nothing but the outage itself. Agents keep
their schedule and buffer (outbox, 500 messages), every client reconnects on its own, and the
dashboard ends up with exactly the results that were produced, once each, in order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reflex_agent.daemon import OUTBOX_LIMIT
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.events import ConnectionState
from reflex_tui.app import make_app
from tests.tui.support import card, card_text, header_text, ready, wait_for

from .support import (
    PRESENCE_TIMEOUT,
    AgentProcess,
    HubProcess,
    Recorder,
    assert_in_order_without_loss,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

#: The issue's bound: agents and dashboard reconnect within this many seconds of the
#: hub's return.
RECONNECT_WITHIN = 10.0
#: Rounds every agent runs while the hub is down (a ~3 s outage at a 1 s interval).
OUTAGE_ROUNDS = 3
FILES_CHANNEL = "reliability-files"
CONNECTED = (ConnectionState.CONNECTED, ConnectionState.RECONNECTED)


async def hub_contents(bus: Bus, config: Config, ids: list[str]) -> dict[str, object]:
    """What must survive a crash: members, uuid metadata, stored files (and their bytes)."""
    members = sorted(m.uuid for m in await bus.get_channel_members(config.channel))
    metadata = {}
    for ident in ids:
        meta = await bus.get_uuid_metadata(ident)
        metadata[ident] = None if meta is None else (meta.name, meta.custom)
    files = []
    for info in await bus.list_files(FILES_CHANNEL):
        data = await bus.download_file(FILES_CHANNEL, info.id, info.name)
        files.append((info.id, info.name, info.size, data))
    return {"members": members, "metadata": metadata, "files": files}


async def test_hub_sigkill_and_restart_loses_nothing(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub-data", tmp_path / "logs")
    await hub.start()
    agents = [AgentProcess(tmp_path, f"rel-{x}", hub.origin) for x in "abc"]
    ids = [a.id for a in agents]
    config = Config(
        origin=hub.origin,
        scripts=tmp_path / "tui-scripts",
        state_dir=tmp_path / "tui-state",
        presence_timeout=PRESENCE_TIMEOUT,
        interval=1,
    )
    # The production bus (built from the config, default reconnect settings), as the CLI does.
    app = make_app(config, resend_check_interval=None)
    assert app.bus is not None
    seen = Recorder()
    app.bus.add_listener(
        on_message=seen.on_message, on_presence=seen.on_presence, on_connection=seen.on_connection
    )
    checker = Bus(BusSettings.from_config(config, user_id="reliability-checker"))
    await checker.start()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot, app)
            for agent in agents:
                await agent.start()
            await wait_for(
                pilot,
                lambda: all(
                    card(app, i) is not None
                    and app.fleet.devices[i].online
                    and len(seen.results(i)) >= 3
                    for i in ids
                ),
                within=30,
                what="three agents on the dashboard, online, 3 results each",
            )
            assert "● connected" in header_text(app)
            await checker.send_file(FILES_CHANNEL, "note.txt", b"survives a SIGKILL\n")
            before = await hub_contents(checker, config, ids)
            assert before["members"] == sorted(ids)

            # --- the crash
            await hub.kill()
            marks = {a.id: len(a.lines) for a in agents}
            last_before = {i: seen.seqs(i)[-1] for i in ids}
            await wait_for(
                pilot,
                lambda: "reconnecting since" in header_text(app),
                within=15,
                what='"reconnecting since" in the header',
            )
            # The outage lasts until every agent has run OUTAGE_ROUNDS rounds without a hub
            # (their own log says so): those results exist only in the agents' buffers.
            await wait_until(
                lambda: all(a.count("(scheduled):", marks[a.id]) >= OUTAGE_ROUNDS for a in agents),
                within=15,
                what=f"{OUTAGE_ROUNDS} rounds per agent during the outage",
            )
            produced = {a.id: a.count("(scheduled):", marks[a.id]) for a in agents}
            assert "reconnecting since" in header_text(app)  # still, for the whole outage
            assert max(produced.values()) < OUTBOX_LIMIT  # the buffer holds the whole outage

            # --- the return
            back = await hub.start()
            await wait_for(
                pilot,
                lambda: app.fleet.connection.state in CONNECTED,
                within=RECONNECT_WITHIN,
                what="dashboard connected again",
            )
            dashboard_back = time.monotonic() - back
            # Every result produced during the outage reaches the dashboard, within the bound.
            await wait_for(
                pilot,
                lambda: all(seen.seqs(i)[-1] >= last_before[i] + produced[i] for i in ids),
                within=RECONNECT_WITHIN - (time.monotonic() - back),
                what="the outage's results delivered",
            )
            delivered_back = time.monotonic() - back
            await wait_until(
                lambda: all(a.first("pubnub reconnected", marks[a.id]) for a in agents),
                within=RECONNECT_WITHIN,
                what="every agent reports its subscription reconnected",
            )
            agents_back = {
                a.id: (a.first("pubnub reconnected", marks[a.id]) or 0.0) - back for a in agents
            }
            assert all(t <= RECONNECT_WITHIN for t in agents_back.values()), agents_back
            assert "● connected" in header_text(app)

            # A few live rounds after the outage, then judge the whole run.
            target = {i: seen.seqs(i)[-1] + 3 for i in ids}
            await wait_for(
                pilot,
                lambda: all(seen.seqs(i)[-1] >= target[i] for i in ids),
                within=15,
                what="live results after the outage",
            )
            for ident in ids:
                assert seen.seqs(ident)[0] == 1, ident  # the dashboard was there first
                assert_in_order_without_loss(seen.seqs(ident), ident)
            states = [event.state for _, event in seen.connection]
            assert states[-2:] == [ConnectionState.RECONNECTING, ConnectionState.RECONNECTED]

            # The dashboard's history: each result exactly once (no duplicates from the
            # replayed outage, no gaps), compared by result timestamp.
            def history_matches() -> bool:
                for ident in ids:
                    ring = app.fleet.devices[ident].tests["ok"].history
                    stamps = [ts for ts, _, _ in ring]
                    produced_ts = sorted(
                        r.ts
                        for got in seen.results(ident)
                        for r in got.message.results  # type: ignore[union-attr]
                        if r.test == "ok"
                    )
                    if stamps != produced_ts:
                        return False
                return True

            await wait_for(pilot, history_matches, within=5, what="dashboard history complete")
            for ident in ids:
                stamps = [ts for ts, _, _ in app.fleet.devices[ident].tests["ok"].history]
                assert len(stamps) == len(set(stamps)), f"{ident}: duplicates in history"

            after = await hub_contents(checker, config, ids)
            assert after == before
            assert [d.id for d in app.fleet.members()] == sorted(ids)
            for ident in ids:
                assert ident in card_text(app, ident)
            print(
                f"dashboard back {dashboard_back:.2f}s, outage results delivered "
                f"{delivered_back:.2f}s, agents back "
                + ", ".join(f"{k} {v:.2f}s" for k, v in agents_back.items())
                + f" after the hub's return; outage rounds {produced}"
            )
    finally:
        await checker.close()
        for agent in agents:
            await agent.close()
        await hub.close()
