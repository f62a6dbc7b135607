"""Issue 5's seven journeys, in order, on one fleet: real hub, agents a/b/c, real dashboard.

The journeys share the fleet (module fixture) because each one starts where the previous
left it, as an operator's session would: 4 sets the 1 s interval that 5 and 6 rely on, 6
removes c and a and kills b, and 7 restarts the dashboard over what is left. Each journey
opens its own dashboard (a fresh `make_app`), so every one of them also exercises the
start-up backfill.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DirectoryTree, Input

from reflex_tui.app import ReflexApp, make_app
from reflex_tui.dialogs.confirm import ConfirmDialog
from reflex_tui.dialogs.interval import IntervalDialog
from reflex_tui.dialogs.upload import UploadDialog
from reflex_tui.screens.dashboard import DashboardScreen

from .harness import (
    BUNDLED_TESTS,
    EDIT_SCRIPT,
    SIZE,
    FleetEnv,
    card,
    card_text,
    connected,
    select,
    value_script,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

UPLOADED = "e2e_upload.sh"
NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetEnv]:
    env = FleetEnv.start(tmp_path_factory.mktemp("fleet"))
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(autouse=True)
def show_agent_logs_on_failure(fleet: FleetEnv) -> Iterator[None]:
    """The agents' logs go to the captured output, shown by pytest only if a test fails."""
    yield
    print(fleet.logs())


@asynccontextmanager
async def dashboard(fleet: FleetEnv) -> AsyncIterator[tuple[ReflexApp, Any]]:
    app = make_app(fleet.dashboard_config(), resend_check_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        yield app, pilot


def names_of(app: ReflexApp, ident: str) -> set[str]:
    device = app.fleet.get(ident)
    return set() if device is None else set(device.tests)


def last_at(app: ReflexApp, ident: str, test: str) -> float | None:
    device = app.fleet.get(ident)
    series = None if device is None else device.tests.get(test)
    return None if series is None else series.last_at


async def rounds_after(pilot: Any, app: ReflexApp, ident: str, count: int) -> None:
    """Wait for `count` more `results` messages from `ident`, counted by arrival: not by
    `seq`, which starts again at 1 when the agent restarts (a wait for "seq + 1" right
    after a restart could wait for a whole old run's worth of rounds)."""
    device = app.fleet.get(ident)
    assert device is not None
    before = device.last_update
    arrivals: set[float] = set()

    def done() -> bool:
        current = app.fleet.get(ident)
        if current is not None and current.last_update not in (None, before):
            arrivals.add(current.last_update)
        return len(arrivals) >= count

    await wait_for(pilot, done, what=f"{count} new round(s) from {ident}")


# ----------------------------------------------------------------------------- 1


async def test_1_three_cards_with_bundled_results(fleet: FleetEnv) -> None:
    async with dashboard(fleet) as (app, pilot):
        for name in NAMES:
            await wait_for(
                pilot,
                lambda n=name: set(BUNDLED_TESTS) <= names_of(app, n) and card(app, n),
                what=f"card {name} with the bundled tests",
            )
            text = card_text(app, name)
            assert all(test in text for test in BUNDLED_TESTS), text
            await wait_for(
                pilot,
                lambda n=name: (d := app.fleet.get(n)) is not None and d.online and d.member,
                what=f"{name} online and a member",
            )


# ----------------------------------------------------------------------------- 2


async def test_2_upload_from_file_dialog_runs_everywhere(fleet: FleetEnv, tmp_path: Path) -> None:
    source = tmp_path / "upload"
    source.mkdir()
    (source / UPLOADED).write_text(value_script("UPLOADED", 7))
    async with dashboard(fleet) as (app, pilot):
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, UploadDialog), what="dialog")
        dialog = app.screen
        assert isinstance(dialog, UploadDialog)
        root_input = dialog.query_one("#root", Input)
        root_input.focus()
        root_input.value = str(source)
        await pilot.press("enter")
        tree = dialog.query_one(DirectoryTree)
        await wait_for(pilot, lambda: Path(tree.path) == source and tree.root.children)
        await pilot.press("down")
        await wait_for(pilot, lambda: dialog.chosen_size is not None, what="preview")
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="sent")
        test = UPLOADED.removesuffix(".sh")
        for name in NAMES:

            def shown(n: str = name) -> bool:
                device = app.fleet.get(n)
                series = None if device is None else device.tests.get(test)
                return bool(series and series.last and series.last.value == 7)

            await wait_for(pilot, shown, what=f"{UPLOADED} result on {name}")
            await wait_for(pilot, lambda n=name: test in card_text(app, n), what="row on card")
        # The agents ran the network copy, never a local file of that name.
        for agent in fleet.agents.values():
            assert not (agent.scripts / UPLOADED).exists()


# ----------------------------------------------------------------------------- 3


async def test_3_ignore_on_one_everywhere_enable_and_survive_restart(fleet: FleetEnv) -> None:
    async with dashboard(fleet) as (app, pilot):

        def ignored(ident: str) -> tuple[str, ...] | None:
            device = app.fleet.get(ident)
            return None if device is None or device.pending_ignore else device.ignored

        # space on b/swap: confirmed by b's state, listed as Disabled, no longer reported.
        await select(pilot, "b", "swap")
        await pilot.press("space")
        await wait_for(pilot, lambda: ignored("b") == ("swap",), what="b confirms swap ignored")
        await wait_for(pilot, lambda: "Disabled: swap" in card_text(app, "b"), what="Disabled")
        stopped = last_at(app, "b", "swap")
        await rounds_after(pilot, app, "b", 2)
        assert last_at(app, "b", "swap") == stopped, "b still reports an ignored test"
        assert last_at(app, "a", "swap") != stopped

        # I on a/load: load ignored on every device, b keeps its own swap.
        await select(pilot, "a", "load")
        await pilot.press("I")
        await wait_for(pilot, lambda: ignored("a") == ("load",), what="a ignores load")
        await wait_for(pilot, lambda: ignored("c") == ("load",), what="c ignores load")
        await wait_for(
            pilot, lambda: set(ignored("b") or ()) == {"swap", "load"}, what="b ignores both"
        )
        # I again (the cursor followed load into Disabled): enabled everywhere.
        assert app.dashboard.selected_test == "load"
        await pilot.press("I")
        for name in NAMES:
            await wait_for(
                pilot,
                lambda n=name: ignored(n) is not None and "load" not in (ignored(n) or ()),
                what=f"{name} runs load again",
            )
        since = time.time()
        await wait_for(
            pilot, lambda: (last_at(app, "c", "load") or 0) > since, what="load reported again"
        )
        assert ignored("b") == ("swap",)

        # Restart b: its ignore list is still in force.
        device = app.fleet.get("b")
        assert device is not None
        before = device.state_at or 0.0
        agent = fleet.agents["b"]
        assert agent.stop() == 0
        agent.start()
        await wait_for(
            pilot,
            lambda: (
                ((app.fleet.get("b") or device).state_at or 0) > before
                and ignored("b") == ("swap",)
            ),
            what="b restarted with swap still ignored",
        )
        stopped = last_at(app, "b", "swap")
        await rounds_after(pilot, app, "b", 1)
        assert last_at(app, "b", "swap") == stopped
        assert "Disabled: swap" in card_text(app, "b")

        # Enable it again on b: swap comes back.
        await select(pilot, "b", "swap")
        await pilot.press("space")
        since = time.time()
        await wait_for(pilot, lambda: ignored("b") == (), what="b enables swap")
        await wait_for(pilot, lambda: (last_at(app, "b", "swap") or 0) > since, what="swap back")
        await wait_for(pilot, lambda: "Disabled" not in card_text(app, "b"))


# ----------------------------------------------------------------------------- 4


async def test_4_interval_for_all_confirmed_and_followed(fleet: FleetEnv) -> None:
    async with dashboard(fleet) as (app, pilot):
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, IntervalDialog), what="dialog")
        app.screen.query_one(Input).value = "1"
        await pilot.press("enter")

        def confirmed(ident: str) -> bool:
            device = app.fleet.get(ident)
            return device is not None and device.interval == 1 and device.pending_interval is None

        for name in NAMES:
            await wait_for(pilot, lambda n=name: confirmed(n), what=f"{name} confirms 1 s")
            await wait_for(pilot, lambda n=name: "every 1s" in card_text(app, n))
        # The results' spacing follows: ~1 s between rounds now (it was 2 s).
        marks: dict[str, list[float]] = {name: [] for name in NAMES}

        def collect() -> bool:
            for name in NAMES:
                at = last_at(app, name, "disk")
                if at is not None and (not marks[name] or at != marks[name][-1]):
                    marks[name].append(at)
            return all(len(times) >= 5 for times in marks.values())

        await wait_for(pilot, collect, what="five more rounds on each agent")
        for name, times in marks.items():
            gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]
            assert 0.5 <= statistics.median(gaps) <= 1.6, (name, gaps)
    # The agents' own state files agree (what a restart starts from).
    for agent in fleet.agents.values():
        files = list((agent.root / "state").rglob("*.json"))
        assert any(json.loads(p.read_text()).get("interval") == 1 for p in files), files


# ----------------------------------------------------------------------------- 5


async def test_5_edited_script_shows_new_value_within_2s(fleet: FleetEnv) -> None:
    test = EDIT_SCRIPT.removesuffix(".sh")
    async with dashboard(fleet) as (app, pilot):

        def value() -> float | None:
            device = app.fleet.get("a")
            series = None if device is None else device.tests.get(test)
            return None if series is None or series.last is None else series.last.value

        await wait_for(pilot, lambda: value() == 1, what="the script's first value")
        path = fleet.agents["a"].scripts / EDIT_SCRIPT
        tmp = path.with_name(f".{EDIT_SCRIPT}.tmp")
        tmp.write_text(value_script("EDIT", 2))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        await wait_for(pilot, lambda: value() == 2, within=2.0, what="new value on a's card")
        assert "EDIT OK - value 2" in card_text(app, "a")


# ----------------------------------------------------------------------------- 6


async def test_6_exit_sigkill_stale_offline_and_delete(fleet: FleetEnv) -> None:
    config = fleet.dashboard_config()
    async with dashboard(fleet) as (app, pilot):
        for name in NAMES:
            await wait_for(pilot, lambda n=name: card(app, n) is not None, what=f"card {name}")

        # SIGKILL b first: its presence timeout runs while the other steps happen.
        fleet.agents["b"].stop(signal.SIGKILL)
        killed = time.monotonic()

        # c leaves the proper way: stop the service, then `reflex-agent exit`.
        agent_c = fleet.agents["c"]
        assert agent_c.stop() == 0
        done = await asyncio.to_thread(agent_c.run, "exit")
        assert done.returncode == 0, done.stderr
        await wait_for(pilot, lambda: card(app, "c") is None, what="c's card gone")

        # b: stale after 3 missed 1 s intervals, offline once its presence times out.
        await wait_for(pilot, lambda: "stale" in card_text(app, "b"), what="b stale")
        device_b = app.fleet.get("b")
        assert device_b is not None and app.fleet.is_stale(device_b)

        # d on a: confirmation, then membership and card gone.
        await select(pilot, "a")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: card(app, "a") is None, what="a's card gone")
        assert app.bus is not None
        members = {m.uuid for m in await app.bus.get_channel_members(config.channel)}
        assert members == {"b"}

        await wait_for(
            pilot,
            lambda: not (app.fleet.get("b") or device_b).online,
            within=45.0,
            what="b offline after its presence timeout",
        )
        assert time.monotonic() - killed >= 10  # a timeout, not a leave
        assert "offline" in card_text(app, "b")
        device_b = app.fleet.get("b")
        assert device_b is not None
        fleet.notes["b"] = {
            test: series.last.value
            for test, series in device_b.tests.items()
            if series.last is not None
        }
        # a was deleted while still running: it must not come back on its own.
        assert card(app, "a") is None


# ----------------------------------------------------------------------------- 7


async def test_7_restarted_dashboard_has_cards_values_and_history(fleet: FleetEnv) -> None:
    before = fleet.notes.get("b")
    assert before, "journey 6 did not record b's last values"
    async with dashboard(fleet) as (app, pilot):
        await wait_for(pilot, lambda: card(app, "b") is not None, what="b's card back")
        device = app.fleet.get("b")
        assert device is not None
        await wait_for(
            pilot,
            lambda: set(BUNDLED_TESTS) <= names_of(app, "b"),
            what="b's results from history",
        )
        now = {t: s.last.value for t, s in device.tests.items() if s.last is not None}
        assert {t: now.get(t) for t in BUNDLED_TESTS} == {t: before.get(t) for t in BUNDLED_TESTS}
        assert len(device.tests["disk"].history) >= 5  # the graph's history
        assert card(app, "a") is None and card(app, "c") is None
        assert not device.online
