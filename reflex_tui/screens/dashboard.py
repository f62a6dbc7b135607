"""The main screen: header, device cards (tile or list view), filter, footer.

The cursor is the screen's own (selected device id + test name), not Textual focus: it
survives cards being added, removed or hidden by the filter, and keys act on it the same
way whether the card is on screen or scrolled away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from reflex_tui.commands import DASHBOARD_ACTIONS, DASHBOARD_BINDINGS, ActionSpec, bindings
from reflex_tui.messages import ForwardWorkerFailures
from reflex_tui.state import Device, Fleet
from reflex_tui.text import one_line
from reflex_tui.widgets.card_grid import CardGrid
from reflex_tui.widgets.device_card import DeviceCard
from reflex_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from reflex_tui.app import ReflexApp


class DashboardScreen(ForwardWorkerFailures, Screen[None]):
    """Every registered device, live."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(DASHBOARD_BINDINGS)
    ACTION_SPECS: ClassVar[tuple[ActionSpec, ...]] = DASHBOARD_ACTIONS
    AUTO_FOCUS = ""  # keys go to the screen; the filter input takes focus only on `/`

    # `var`, not `reactive`: a repainting reactive on a screen repaints the whole screen
    # (every card on it) on each cursor move; the cards repaint themselves.
    list_view: var[bool] = var(False)
    """List view (one row per device) instead of tiles."""
    selected_id: var[str | None] = var(None)
    """Device the cursor is on."""
    selected_test: var[str | None] = var(None)
    """Test (row, or name in the Disabled line) the cursor is on."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self._cursor_auto = True
        self._syncing = False
        self._resync = False
        """The cursor was placed by the screen, not the user: it may move as data arrives
        (at start-up, results land after the cards appear)."""

    @property
    def reflex_app(self) -> ReflexApp:
        from reflex_tui.app import ReflexApp

        assert isinstance(self.app, ReflexApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield StatusBar(self.fleet, id="status")
        with Vertical(id="filter-bar"):
            yield Input(placeholder="filter: name or ok/warn/crit/unkn/offline/stale", id="filter")
        yield CardGrid(self.fleet, id="cards")
        yield Static(id="empty")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def grid(self) -> CardGrid:
        return self.query_one(CardGrid)

    async def on_mount(self) -> None:
        self.query_one("#filter-bar").display = False
        await self.sync_cards()

    # ------------------------------------------------------------------ state -> screen

    async def sync_cards(self) -> None:
        """Match the cards to the registered devices. Calls while one runs are folded into
        one more pass afterwards (mounting must not be interrupted half way)."""
        if self._syncing:
            self._resync = True
            return
        self._syncing = True
        try:
            while True:
                self._resync = False
                await self.grid.sync()
                if not self._resync:
                    break
        finally:
            self._syncing = False
        self._ensure_selection()
        self._update_empty()

    def fleet_changed(self, dirty: set[str], structure: bool) -> None:
        """Called by the app's throttled repaint with what changed since the last one."""
        if not self._paintable():
            return
        if structure:
            self.run_worker(self.sync_cards(), group="sync")
        self.grid.refresh_devices(dirty)
        self.query_one(StatusBar).refresh()
        if self.selected_id in dirty:
            self._clamp_cursor()
        if not self.grid.cards:
            self._update_empty()  # loading -> "no devices yet" needs no structure change

    def tick(self) -> None:
        """Once a second: ages move on even without events (staleness changes arrive as
        dirty devices through `fleet_changed`)."""
        if not self._paintable():
            return
        self.grid.refresh_visible()
        self.query_one(StatusBar).refresh()

    def _paintable(self) -> bool:
        """Mounted, attached and still holding its widgets: while the app exits, a timer
        can fire after the children are gone (seen in the e2e runs as a NoMatches crash)."""
        if not self.is_mounted or not self.is_attached:
            return False
        try:
            self.query_one(CardGrid)
            self.query_one(StatusBar)
        except NoMatches:
            return False
        return True

    def on_screen_resume(self) -> None:
        self.run_worker(self.sync_cards(), group="sync")
        self.grid.refresh_all()

    def _update_empty(self) -> None:
        empty = self.query_one("#empty", Static)
        if self.grid.cards and self.grid.visible_cards():
            empty.display = False
            return
        empty.display = True
        if self.grid.cards:
            empty.update(Content("No device matches the filter. Press escape to clear it."))
        elif self.fleet.loading:
            empty.update(Content(f"Loading… ({one_line(self.fleet.loading)})"))
        else:
            channel = one_line(self.fleet.membership_channel)
            empty.update(
                Content(
                    f"No devices registered on '{channel}' yet.\n"
                    "Start an agent on a host with: reflex-agent join"
                )
            )

    # ------------------------------------------------------------------ cursor

    def selected_device(self) -> Device | None:
        return None if self.selected_id is None else self.fleet.get(self.selected_id)

    def selected_card(self) -> DeviceCard | None:
        return None if self.selected_id is None else self.grid.cards.get(self.selected_id)

    def _ensure_selection(self) -> None:
        visible = self.grid.visible_cards()
        card = self.selected_card()
        if card is None or card not in visible:
            self.select(visible[0] if visible else None, auto=True)
        else:
            self._clamp_cursor()

    def _clamp_cursor(self) -> None:
        device = self.selected_device()
        if device is None:
            return
        tests = device.selectable_tests()
        if self.selected_test not in tests or (self._cursor_auto and tests):
            self.selected_test = tests[0] if tests else None

    def select(
        self,
        card: DeviceCard | None,
        test: str | None = None,
        *,
        last: bool = False,
        auto: bool = False,
    ) -> None:
        """Move the cursor to `card` (first test, or last with `last`, or `test`)."""
        self._cursor_auto = auto
        previous = self.selected_card()
        if previous is not None and previous is not card:
            previous.selected = False
            previous.cursor = None
        if card is None:
            self.selected_id, self.selected_test = None, None
            return
        device = self.fleet.get(card.device_id)
        tests = device.selectable_tests() if device is not None else []
        if test is None or test not in tests:
            test = (tests[-1] if last else tests[0]) if tests else None
        self.selected_id, self.selected_test = card.device_id, test
        card.selected = True
        card.cursor = test
        self.call_after_refresh(self.grid.scroll_to_card, card)

    def watch_selected_test(self, test: str | None) -> None:
        card = self.selected_card()
        if card is not None:
            card.cursor = test
            self.call_after_refresh(self.grid.scroll_to_card, card)

    def _move_card(self, step: int, *, keep_test: bool = False, last: bool = False) -> bool:
        visible = self.grid.visible_cards()
        if not visible:
            return False
        card = self.selected_card()
        index = visible.index(card) if card in visible else -1
        target = index + step
        if target < 0 or target >= len(visible):
            if abs(step) > 1 and 0 <= index:
                # Grid: from the last row down (or first row up) go to the nearest end.
                target = len(visible) - 1 if step > 0 else 0
                if target == index:
                    return False
            else:
                return False
        self.select(visible[target], self.selected_test if keep_test else None, last=last)
        return True

    def action_cursor_down(self) -> None:
        device = self.selected_device()
        if device is None:
            self._ensure_selection()
            return
        tests = device.selectable_tests()
        if self.selected_test in tests and tests.index(self.selected_test) + 1 < len(tests):
            self._cursor_auto = False
            self.selected_test = tests[tests.index(self.selected_test) + 1]
            return
        self._move_card(1 if self.list_view else self.grid.columns)

    def action_cursor_up(self) -> None:
        device = self.selected_device()
        if device is None:
            self._ensure_selection()
            return
        tests = device.selectable_tests()
        if self.selected_test in tests and tests.index(self.selected_test) > 0:
            self._cursor_auto = False
            self.selected_test = tests[tests.index(self.selected_test) - 1]
            return
        self._move_card(-1 if self.list_view else -self.grid.columns, last=True)

    def action_card_left(self) -> None:
        self._move_card(-1, keep_test=True)

    def action_card_right(self) -> None:
        self._move_card(1, keep_test=True)

    def action_next_card(self) -> None:
        if not self._move_card(1):
            visible = self.grid.visible_cards()
            if visible:
                self.select(visible[0])  # wrap around, like tab in a form

    def action_previous_card(self) -> None:
        if not self._move_card(-1):
            visible = self.grid.visible_cards()
            if visible:
                self.select(visible[-1])

    @on(DeviceCard.Clicked)
    def _card_clicked(self, event: DeviceCard.Clicked) -> None:
        card = event.card
        test = None
        device = self.fleet.get(card.device_id)
        if device is not None and not card.list_view:
            rows = [t.name for t in device.active_tests()]
            index = (event.line - 1) // 2  # presence line, then two lines per test
            if 0 <= index < len(rows) and event.line >= 1:
                test = rows[index]
        self.select(card, test)

    # ------------------------------------------------------------------ view and filter

    def action_toggle_view(self) -> None:
        self.list_view = not self.list_view

    def watch_list_view(self, list_view: bool) -> None:
        self.grid.set_list_view(list_view)
        card = self.selected_card()
        if card is not None:
            self.call_after_refresh(self.grid.scroll_to_card, card)

    def action_filter(self) -> None:
        bar = self.query_one("#filter-bar")
        bar.display = True
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if not filter_input.value and not self.query_one("#filter-bar").display:
            return
        filter_input.value = ""
        self._apply_filter("")
        self.query_one("#filter-bar").display = False
        self.set_focus(None)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.query_one("#filter-bar").display = False
        self.set_focus(None)

    def _apply_filter(self, text: str) -> None:
        self.grid.apply_filter(text.strip())
        status = self.query_one(StatusBar)
        status.filter_text = text.strip()
        status.refresh()
        self._ensure_selection()
        self._update_empty()

    # ------------------------------------------------------------------ actions (to the app)

    def action_toggle_ignore(self) -> None:
        self._cursor_auto = False  # acted on this test: keep the cursor on it
        self.reflex_app.toggle_ignore(self.selected_device(), self.selected_test, everywhere=False)

    def action_toggle_ignore_all(self) -> None:
        self._cursor_auto = False  # acted on this test: keep the cursor on it
        self.reflex_app.toggle_ignore(self.selected_device(), self.selected_test, everywhere=True)

    def _need_device(self) -> Device | None:
        device = self.selected_device()
        if device is None:
            self.notify("No device selected", severity="warning", markup=False)
        return device

    def action_refresh(self) -> None:
        device = self._need_device()  # never fall through to "all devices"
        if device is not None:
            self.reflex_app.refresh_devices(device)

    def action_refresh_all(self) -> None:
        self.reflex_app.refresh_devices(None)

    def action_set_interval(self) -> None:
        device = self._need_device()
        if device is not None:
            self.reflex_app.ask_interval(device)

    def action_set_interval_all(self) -> None:
        self.reflex_app.ask_interval(None)

    def action_run_now(self) -> None:
        self._cursor_auto = False  # acted on this test: keep the cursor on it
        self.reflex_app.run_now(self.selected_device(), self.selected_test)

    def action_upload(self) -> None:
        self.reflex_app.open_upload()

    def action_scripts(self) -> None:
        self.reflex_app.open_scripts()

    def action_delete_host(self) -> None:
        self.reflex_app.ask_delete(self.selected_device())

    def action_detail(self) -> None:
        self._cursor_auto = False  # acted on this test: keep the cursor on it
        self.reflex_app.open_detail(self.selected_device(), self.selected_test)
