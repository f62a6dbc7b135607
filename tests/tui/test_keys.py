"""Every key of the dashboard against a real hub: what it publishes (recorded by a second
subscriber) and what the screen shows afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, OptionList

from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_core.protocol import Refresh, RunNow, SetIgnore, SetInterval, decode_custom
from reflex_tui.app import ReflexApp, make_app
from reflex_tui.commands import APP_ACTIONS, DASHBOARD_BINDINGS, DETAIL_ACTIONS, SCRIPTS_ACTIONS
from reflex_tui.dialogs.confirm import ConfirmDialog
from reflex_tui.dialogs.interval import IntervalDialog
from reflex_tui.screens.dashboard import DashboardScreen
from reflex_tui.screens.detail import DetailScreen
from reflex_tui.screens.help import HelpScreen

from .support import (
    CommandLog,
    SimAgent,
    card,
    card_text,
    pct,
    ready,
    select,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

SIZE = (100, 40)


@asynccontextmanager
async def running(config: Config, bus: Bus, size: tuple[int, int] = SIZE) -> AsyncIterator[Any]:
    app = make_app(config, bus=bus, resend_check_interval=None)
    async with app.run_test(size=size) as pilot:
        await ready(pilot, app)
        yield app, pilot


async def two_agents(make_agent: Any) -> tuple[SimAgent, SimAgent]:
    web = await (await make_agent("web1")).join()
    db = await make_agent("db2")
    db.ignored = ("load",)
    await db.join()
    await web.publish_round([pct("cpu", 10.0), pct("disk", 20.0)])
    await db.publish_round([pct("cpu", 30.0), pct("disk", 40.0)])
    await web.publish_state()
    await db.publish_state()
    return web, db


async def metadata_settings(bus: Bus, ident: str) -> Any:
    metadata = await bus.get_uuid_metadata(ident)
    assert metadata is not None
    return decode_custom(metadata.custom)


def top_hit_is(palette: Any, text: str) -> bool:
    hits = palette.query_one(OptionList)
    return bool(hits.option_count) and text in str(hits.get_option_at_index(0).prompt)


def shows(app: ReflexApp, ident: str, text: str) -> bool:
    return text in card_text(app, ident)


def screen(app: ReflexApp) -> DashboardScreen:
    return app.dashboard


# ----------------------------------------------------------------------------- navigation


async def test_navigation_keys(make_agent: Any, dashboard_bus: Bus, tui_config: Config) -> None:
    web, db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        dash = screen(app)
        await wait_for(pilot, lambda: "40%" in card_text(app, db.id))
        assert (dash.selected_id, dash.selected_test) == (db.id, "cpu")  # db2 sorts first
        await pilot.press("j")
        assert dash.selected_test == "disk"
        await pilot.press("down")  # disk -> the Disabled line's "load"
        assert (dash.selected_id, dash.selected_test) == (db.id, "load")
        await pilot.press("k", "up")
        assert dash.selected_test == "cpu"
        await pilot.press("l")
        assert dash.selected_id == web.id and dash.selected_test == "cpu"
        await pilot.press("h")
        assert dash.selected_id == db.id
        await pilot.press("right")
        assert dash.selected_id == web.id
        await pilot.press("left")
        assert dash.selected_id == db.id
        await pilot.press("tab")
        assert dash.selected_id == web.id
        await pilot.press("tab")  # wraps around
        assert dash.selected_id == db.id
        await pilot.press("shift+tab")
        assert dash.selected_id == web.id
        selected = card(app, web.id)
        assert selected is not None and selected.has_class("-selected")
        # In the list view, down walks through tests and on into the next device.
        await pilot.press("v", "shift+tab")
        assert dash.selected_id == db.id
        await pilot.press("down", "down", "down")
        assert (dash.selected_id, dash.selected_test) == (web.id, "cpu")


# ----------------------------------------------------------------------------- ignore


async def test_space_ignores_then_enables_a_test(
    make_agent: Any,
    dashboard_bus: Bus,
    command_log: CommandLog,
    make_bus: Any,
    tui_config: Config,
) -> None:
    web, _db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id, "disk")
        await pilot.press("space")
        await wait_for(pilot, lambda: command_log.of(SetIgnore), what="set_ignore")
        assert command_log.of(SetIgnore) == [SetIgnore(target=web.id, ignore=("disk",))]
        # Confirmed by the agent's state: the pending mark goes away.
        await wait_for(
            pilot,
            lambda: (
                "Disabled: disk" in card_text(app, web.id) and "⧗" not in card_text(app, web.id)
            ),
            what="confirmed",
        )
        assert "WARN disk" not in card_text(app, web.id) and "OK   disk" not in card_text(
            app, web.id
        )
        observer = await make_bus("observer")
        assert (await metadata_settings(observer, web.id)).ignore == ("disk",)
        # The cursor follows the test into the Disabled line; space again re-enables it.
        assert screen(app).selected_test == "disk"
        await pilot.press("space")
        await wait_for(pilot, lambda: len(command_log.of(SetIgnore)) == 2)
        assert command_log.of(SetIgnore)[1] == SetIgnore(target=web.id, ignore=())
        await wait_for(pilot, lambda: "Disabled" not in card_text(app, web.id))
        assert (await metadata_settings(observer, web.id)).ignore == ()


async def test_ignore_pending_until_confirmed(
    make_agent: Any, dashboard_bus: Bus, command_log: CommandLog, tui_config: Config
) -> None:
    """An offline agent never confirms: the change stays pending (and in metadata)."""
    web = await make_agent("web1", confirm=False)
    await web.join()
    await web.publish_round([pct("cpu", 1.0), pct("disk", 2.0)])
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id, "cpu")
        await pilot.press("space")
        await wait_for(pilot, lambda: "Disabled: cpu⧗" in card_text(app, web.id))
        await wait_for(pilot, lambda: command_log.of(SetIgnore))
        await web.publish_state()  # a state that does not confirm it
        await pilot.pause(0.2)
        assert "Disabled: cpu⧗" in card_text(app, web.id)
        web.ignored = ("cpu",)
        await web.publish_state()
        await wait_for(pilot, lambda: "⧗" not in card_text(app, web.id), what="confirmed")


async def test_capital_i_toggles_test_on_all_devices(
    make_agent: Any,
    dashboard_bus: Bus,
    command_log: CommandLog,
    make_bus: Any,
    tui_config: Config,
) -> None:
    web, db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id, "cpu")
        await pilot.press("I")
        await wait_for(pilot, lambda: len(command_log.of(SetIgnore)) == 2)
        sent = {c.target: c.ignore for c in command_log.of(SetIgnore)}
        assert sent == {web.id: ("cpu",), db.id: ("cpu", "load")}  # db keeps its own list
        observer = await make_bus("observer")
        assert (await metadata_settings(observer, db.id)).ignore == ("cpu", "load")
        await wait_for(pilot, lambda: "Disabled: cpu" in card_text(app, web.id))
        await wait_for(pilot, lambda: "Disabled: cpu load" in card_text(app, db.id))
        await pilot.press("I")  # cursor is on the disabled cpu: enable everywhere
        await wait_for(pilot, lambda: len(command_log.of(SetIgnore)) == 4)
        sent = {c.target: c.ignore for c in command_log.of(SetIgnore)[2:]}
        assert sent == {web.id: (), db.id: ("load",)}


# ----------------------------------------------------------------------------- commands


async def test_refresh_keys(
    make_agent: Any, dashboard_bus: Bus, command_log: CommandLog, tui_config: Config
) -> None:
    web, _db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id)
        await pilot.press("r")
        await wait_for(pilot, lambda: command_log.of(Refresh))
        await pilot.press("R")
        await wait_for(pilot, lambda: len(command_log.of(Refresh)) == 2)
        assert command_log.of(Refresh) == [Refresh(target=web.id), Refresh(target="*")]
        await wait_for(
            pilot,
            lambda: any(
                "Refresh sent to all devices" in str(n.message) for n in app._notifications
            ),
        )


async def test_x_runs_selected_test_now(
    make_agent: Any, dashboard_bus: Bus, command_log: CommandLog, tui_config: Config
) -> None:
    web, _db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id, "disk")
        await pilot.press("x")
        await wait_for(pilot, lambda: command_log.of(RunNow))
        assert command_log.of(RunNow) == [RunNow(target=web.id, test="disk")]


async def test_t_sets_interval_with_validation(
    make_agent: Any,
    dashboard_bus: Bus,
    command_log: CommandLog,
    make_bus: Any,
    tui_config: Config,
) -> None:
    web, _db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, IntervalDialog))
        dialog_input = app.screen.query_one(Input)
        assert dialog_input.value == "10"
        for bad in ("0", "86401"):
            dialog_input.value = bad
            await pilot.press("enter")
            assert isinstance(app.screen, IntervalDialog), f"{bad} accepted"
            assert "from 1 to 86400" in str(app.screen.query_one("#error").render())
        dialog_input.value = ""
        await pilot.press("3", "0", "enter")
        await wait_for(pilot, lambda: command_log.of(SetInterval))
        assert command_log.of(SetInterval) == [SetInterval(target=web.id, interval=30)]
        await wait_for(pilot, lambda: "every 30s" in card_text(app, web.id), what="confirmed")
        observer = await make_bus("observer")
        assert (await metadata_settings(observer, web.id)).interval == 30
        # escape cancels without sending anything
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, IntervalDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert len(command_log.of(SetInterval)) == 1


async def test_capital_t_sets_interval_for_all(
    make_agent: Any,
    dashboard_bus: Bus,
    command_log: CommandLog,
    make_bus: Any,
    tui_config: Config,
) -> None:
    web, db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, IntervalDialog))
        await pilot.press("6", "0", "enter")
        await wait_for(pilot, lambda: command_log.of(SetInterval))
        assert command_log.of(SetInterval) == [SetInterval(target="*", interval=60)]
        for ident in (web.id, db.id):
            await wait_for(pilot, partial(shows, app, ident, "every 1m"), what=ident)
        observer = await make_bus("observer")
        for agent in (web, db):
            assert (await metadata_settings(observer, agent.id)).interval == 60


async def test_pending_interval_shown_until_confirmed(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web = await make_agent("web1", confirm=False)
    await web.join()
    await web.publish_round([pct("cpu", 1.0)])
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, IntervalDialog))
        app.screen.query_one(Input).value = "45"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "10s→45s⧗" in card_text(app, web.id))
        web.interval = 45
        await web.publish_state()
        await wait_for(pilot, lambda: "every 45s ·" in card_text(app, web.id))


# ----------------------------------------------------------------------------- delete


async def test_d_deletes_host_after_confirmation(
    make_agent: Any, dashboard_bus: Bus, make_bus: Any, tui_config: Config
) -> None:
    web, db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "still running" in str(app.screen.query_one(".consequence").render())
        await pilot.press("n")  # cancel: nothing happens
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert card(app, web.id) is not None
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: card(app, web.id) is None, what="card removed")
        observer = await make_bus("observer")
        members = await observer.get_channel_members(tui_config.channel)
        assert [m.uuid for m in members] == [db.id]
        await wait_for(
            pilot, lambda: any("still running" in str(n.message) for n in app._notifications)
        )
        assert screen(app).selected_id == db.id


async def test_other_dashboard_drops_deleted_card(
    make_agent: Any, make_bus: Any, tui_config: Config
) -> None:
    """Delete in one dashboard: a second one drops the card through the membership event."""
    web, db = await two_agents(make_agent)
    other = make_app(tui_config, bus=await make_bus("reflex-tui.other"))
    async with other.run_test(size=SIZE) as other_pilot:
        await ready(other_pilot, other)
        async with running(tui_config, await make_bus("reflex-tui.me")) as (app, pilot):
            await select(pilot, db.id)
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await wait_for(pilot, lambda: card(app, db.id) is None)
        await wait_for(other_pilot, lambda: card(other, db.id) is None, what="event")
        assert card(other, web.id) is not None


# ----------------------------------------------------------------------------- screens


async def test_enter_opens_detail_and_escape_returns(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web, _db = await two_agents(make_agent)
    await web.publish_round([pct("cpu", 85.0), pct("disk", 20.0)])
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await select(pilot, web.id, "cpu")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = app.screen

        def stats() -> str:
            return str(detail.query_one("#stats").render())

        assert "Last   85%" in stats() and "Min    10%" in stats() and "Points 2" in stats()
        timeline = str(detail.query_one("#timeline").render())
        assert "OK → WARN" in timeline
        await web.publish_round([pct("cpu", 95.0), pct("disk", 20.0)])  # live
        await wait_for(pilot, lambda: "Last   95%" in stats(), what="live update")
        assert "WARN → CRIT" in str(detail.query_one("#timeline").render())
        assert "CPU CRITICAL - 95.0%" in str(detail.query_one("#output").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_v_toggles_list_view(make_agent: Any, dashboard_bus: Bus, tui_config: Config) -> None:
    web, db = await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await pilot.press("v")
        assert screen(app).list_view
        await pilot.pause()
        db_card, web_card = card(app, db.id), card(app, web.id)
        assert db_card is not None and web_card is not None
        assert db_card.list_view and db_card.size.height > 1  # selected: expanded
        assert web_card.size.height == 1  # one row per device
        assert web_card.plain.splitlines()[1].startswith("▸ OK   web1")
        await pilot.press("v")
        assert not screen(app).list_view
        await pilot.pause()
        assert not web_card.list_view and web_card.size.height > 3


async def test_slash_filters_by_name_and_status(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    web, db = await two_agents(make_agent)
    await db.publish_round([pct("cpu", 99.0), pct("disk", 40.0)])
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await wait_for(pilot, lambda: "CRIT" in card_text(app, db.id))

        def shown() -> list[str]:
            return [c.device_id for c in screen(app).grid.visible_cards()]

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("w", "e", "b")
        assert shown() == [web.id]
        await pilot.press("enter")  # keep the filter, keys go back to the cards
        assert app.focused is None and shown() == [web.id]
        assert screen(app).selected_id == web.id
        await pilot.press("slash")
        app.focused.value = "crit"  # type: ignore[union-attr]
        await pilot.pause()
        assert shown() == [db.id]
        await pilot.press("escape")
        assert shown() == [db.id, web.id]


async def test_question_mark_help_and_q_quits(
    make_agent: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("q")
        assert app._exit and app.return_code == 0


async def test_command_palette_runs_the_same_actions(
    make_agent: Any, dashboard_bus: Bus, command_log: CommandLog, tui_config: Config
) -> None:
    await two_agents(make_agent)
    async with running(tui_config, dashboard_bus) as (app, pilot):
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        palette = app.screen
        palette.query_one(Input).value = "refresh all devices"
        # The palette searches in a worker: wait for its top hit, then pick it.
        await wait_for(pilot, partial(top_hit_is, palette, "Refresh all"), what="hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: command_log.of(Refresh), what="palette refresh")
        assert command_log.of(Refresh) == [Refresh(target="*")]


def test_every_binding_has_an_id() -> None:
    from reflex_tui.dialogs.upload import UploadDialog
    from reflex_tui.screens.scripts import ScriptsScreen

    specs = [*DASHBOARD_BINDINGS, *APP_ACTIONS, *SCRIPTS_ACTIONS, *DETAIL_ACTIONS]
    assert all(spec.id for spec in specs)
    for owner in (
        ReflexApp,
        DashboardScreen,
        DetailScreen,
        ScriptsScreen,
        HelpScreen,
        ConfirmDialog,
        IntervalDialog,
        UploadDialog,
    ):
        for binding in owner.BINDINGS:
            assert getattr(binding, "id", None), f"{owner.__name__}: {binding}"
