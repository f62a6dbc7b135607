"""The dashboard against a real hub: backfill, live results, registry, presence, staleness,
spoofing and hostile text. Simulated agents are SDK publishers (see `support.SimAgent`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import Static

from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_core.protocol import Rejection, Result, ResultsMessage, Status, device_channel
from reflex_tui.app import make_app
from reflex_tui.screens.detail import DetailScreen

from .support import ManualClock, card, card_text, header_text, pct, ready, select, wait_for

pytestmark = pytest.mark.timeout(60)

SIZE = (100, 40)


async def test_backfill_then_live_results(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await (await make_agent("web1.example.com")).join()
    for value in (10.0, 20.0, 30.0):
        await web.publish_round([pct("cpu", value), pct("disk", 85.0)])
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        text = card_text(app, web.id)
        assert "web1.example.com" in text
        assert "cpu" in text and "30%" in text
        assert "WARN disk" in text and "85%" in text
        assert len(app.fleet.devices[web.id].tests["cpu"].history) == 3
        await web.publish_round([pct("cpu", 95.0), pct("disk", 85.0)])
        await wait_for(pilot, lambda: "CRIT cpu" in card_text(app, web.id), what="live result")
        assert "95%" in card_text(app, web.id)
        await wait_for(pilot, lambda: "1 online" in header_text(app))
        header = header_text(app)
        assert "connected" in header and f"local hub at {tui_config.hub_url}" in header
        assert "1 device" in header and "CRIT 1" in header and "WARN 1" in header


async def test_backfill_after_restart(make_agent: Any, make_bus: Any, tui_config: Config) -> None:
    """A restarted dashboard shows cards, last values and graph history from the hub."""
    web = await (await make_agent("web1")).join()
    first = make_app(tui_config, bus=await make_bus("reflex-tui.first"))
    async with first.run_test(size=SIZE) as pilot:
        await ready(pilot, first)
        for value in (11.0, 12.0, 13.0, 14.0):
            await web.publish_round([pct("cpu", value)])
        await wait_for(pilot, lambda: "14%" in card_text(first, web.id))
    web.rejected = (Rejection("evil.sh", "bad signature: not signed"),)
    await web.publish_state()

    second = make_app(tui_config, bus=await make_bus("reflex-tui.second"))
    async with second.run_test(size=SIZE) as pilot:
        await ready(pilot, second)
        text = card_text(second, web.id)
        assert "14%" in text
        assert "✗ evil.sh: bad signature: not signed" in text
        series = second.fleet.devices[web.id].tests["cpu"]
        assert [v for v in series.history.values()] == [11.0, 12.0, 13.0, 14.0]


async def test_membership_set_adds_and_delete_removes_card(
    make_agent: Any, make_bus: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert card(app, "db-7") is None
        db = await (await make_agent("DB-7.internal")).join()
        assert db.id == "db-7-internal"
        await wait_for(pilot, lambda: card(app, db.id) is not None, what="card on join")
        await wait_for(pilot, lambda: "DB-7.internal" in card_text(app, db.id), what="name")
        await db.publish_round([pct("cpu", 5.0)])
        await wait_for(pilot, lambda: "5%" in card_text(app, db.id))
        admin = await make_bus("admin")
        await admin.remove_channel_members(tui_config.channel, [db.id])
        await wait_for(pilot, lambda: card(app, db.id) is None, what="card removed")


async def test_presence_online_then_offline(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await (await make_agent("web1")).join(present=False)
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await wait_for(pilot, lambda: "○ offline" in card_text(app, web.id))
        await web.go_online()
        await wait_for(pilot, lambda: "● online" in card_text(app, web.id), what="join")
        assert "1 online" in header_text(app)
        await web.go_offline()
        await wait_for(pilot, lambda: "○ offline" in card_text(app, web.id), what="leave")


async def test_here_now_at_start(make_agent: Any, dashboard_bus: Bus, tui_config: Config) -> None:
    web = await (await make_agent("web1")).join()
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.fleet.devices[web.id].online
        assert "● online" in card_text(app, web.id)


async def test_stale_after_three_missed_intervals(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    clock = ManualClock()
    web = await (await make_agent("web1")).join()
    app = make_app(tui_config, bus=dashboard_bus, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await web.publish_round([pct("cpu", 5.0)])
        await wait_for(pilot, lambda: "5%" in card_text(app, web.id))
        clock.advance(29)
        await pilot.pause()
        assert "stale" not in card_text(app, web.id)
        clock.advance(2)  # 31 s > 3 x 10 s without a result
        await wait_for(pilot, lambda: "◌ stale, online" in card_text(app, web.id), what="stale")
        assert "1 stale" in header_text(app)
        await web.publish_round([pct("cpu", 6.0)])
        await wait_for(pilot, lambda: "stale" not in card_text(app, web.id), what="fresh")


async def test_spoofed_publisher_is_flagged_not_used(
    make_agent: Any, make_bus: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await (await make_agent("web1")).join()
    await web.publish_round([pct("cpu", 10.0)])
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        mallory = await make_bus("mallory")
        forged = ResultsMessage(
            host="web1",
            id="web1",
            seq=99,
            ts=1.0,
            interval=10,
            results=(pct("cpu", 99.0),),
        )
        await mallory.publish(device_channel(web.id), forged.to_wire())
        await wait_for(pilot, lambda: "mallory" in card_text(app, web.id), what="spoof flag")
        text = card_text(app, web.id)
        assert "⚠ 1 msg(s) from 'mallory' ignored (not web1)" in text
        assert "10%" in text and "99%" not in text
        assert any("mallory" in str(n.message) for n in app._notifications)
        assert any("mallory" in w.text for w in app.fleet.warnings)


async def test_output_markup_and_escapes_shown_literally(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await (await make_agent("web1")).join()
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(pilot, app)
        hostile = "[bold red]boom[/] [link=http://evil]x[/link] \x1b[31mred\x1b]0;title\x07"
        await web.publish_round(
            [Result(test="check", status=Status.OK, output=hostile, long_output="[i]2nd[/i]")]
        )
        await wait_for(pilot, lambda: "boom" in card_text(app, web.id))
        assert "[bold red]boom[/]" in card_text(app, web.id)
        rendered = card(app, web.id)
        assert rendered is not None
        for y in range(rendered.size.height):
            for segment in rendered.render_line(y):
                assert "\x1b" not in segment.text
                assert segment.style is None or not segment.style.link
                if "boom" in segment.text:
                    assert segment.style is None or not segment.style.bold
        await select(pilot, web.id, "check")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        output = str(app.screen.query_one("#output", Static).render())
        assert "[bold red]boom[/] [link=http://evil]x[/link] ␛red␛" in output
        assert "[i]2nd[/i]" in output and "\x1b" not in output


async def test_malformed_message_is_a_warning(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await (await make_agent("web1")).join()
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await web.bus.publish(web.channel, {"v": 1, "kind": "results", "host": "web1"})
        await wait_for(pilot, lambda: "malformed" in card_text(app, web.id))
        await web.publish_round([pct("cpu", 1.0)])
        await wait_for(pilot, lambda: "1%" in card_text(app, web.id), what="still running")


async def test_results_from_unregistered_device_are_not_shown(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    stray = await make_agent("stray")
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await stray.publish_round([pct("cpu", 1.0)])
        await wait_for(pilot, lambda: stray.id in app.fleet.devices, what="ingested")
        assert card(app, stray.id) is None
        await stray.join()  # registers later: the card appears with what was received
        await wait_for(pilot, lambda: "1%" in card_text(app, stray.id), what="card")


async def test_card_grows_on_screen_when_first_results_arrive(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    """A device registered before its first results gets a one-line card; when the results
    come, the card's laid-out height must follow (not only its text). Seen in the demo:
    the card stayed two lines tall, showing one test of six."""
    from reflex_tui.widgets.render import card_height

    web = await (await make_agent("web1")).join()
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await wait_for(pilot, lambda: card(app, web.id) is not None, what="empty card")
        empty = card(app, web.id)
        assert empty is not None
        await pilot.pause(0.3)
        await web.publish_round([pct(name, 10.0) for name in ("cpu", "disk", "load", "swap")])

        def laid_out() -> bool:
            found = card(app, web.id)
            device = app.fleet.get(web.id)
            if found is None or device is None or len(device.tests) < 4:
                return False
            return found.content_region.height == card_height(device, found.size.width)

        await wait_for(pilot, laid_out, what="card laid out at its new height")


async def test_history_backfill_yields_to_the_loop_between_devices(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    """Parsing an hour of history per device is CPU work on the UI's loop; the dashboard
    must get turns (keys, repaints) between devices, not only between batches of 50."""
    agents = [await (await make_agent(f"hist{i}")).join() for i in range(3)]
    for agent in agents:
        for value in (1.0, 2.0):
            await agent.publish_round([pct("cpu", value)])
    app = make_app(tui_config, bus=dashboard_bus)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        controller = app.controller
        assert controller is not None
        applied_when_ticked: list[int] = []

        async def ticker() -> None:
            while True:
                applied_when_ticked.append(len(app.fleet.devices["hist0"].tests["cpu"].history))
                await asyncio.sleep(0)

        app.fleet.devices["hist0"].tests["cpu"].history.clear()
        task = asyncio.create_task(ticker())
        try:
            await controller.load_history([a.id for a in agents])
        finally:
            task.cancel()
        # The ticker ran while later devices were still being parsed: it saw hist0's
        # history already refilled before load_history returned.
        assert 2 in applied_when_ticked[:-1], applied_when_ticked
