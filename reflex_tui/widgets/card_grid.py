"""The scrolling area holding one `DeviceCard` per registered device.

Cards are created when a device becomes a member and removed when it leaves; filtering
hides cards (`display`) instead of removing them, so the cursor and scroll position
survive typing in the filter. The tile view is a grid whose column count follows the
terminal width (Textual grids do not wrap by themselves).
"""

from __future__ import annotations

import time

from textual import events
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.timer import Timer

from reflex_tui.state import Fleet, device_matches
from reflex_tui.widgets.device_card import DeviceCard

LAYOUT_INTERVAL = 0.5
"""Cards that grew or shrank are laid out together at most this often (a burst of new
results, e.g. 100 agents joining, would otherwise lay out the screen ten times a second)."""
MIN_TILE_WIDTH = 38
"""Two tiles side by side at 80 columns; four at 160."""


class CardGrid(VerticalScroll, can_focus=False):
    """Keeps its cards in the fleet's display order."""

    def __init__(self, fleet: Fleet, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self.cards: dict[str, DeviceCard] = {}
        self.list_view = False
        self.query_text = ""
        self.columns = 1
        self._layout_timer: Timer | None = None
        self._last_layout = 0.0

    # ------------------------------------------------------------------ structure

    async def sync(self) -> None:
        """Add and remove cards so they match the fleet's members, in order.

        Not cancellation-safe (cards are mounted in between): the screen serialises calls.
        """
        wanted = [d.id for d in self.fleet.members()]
        if list(self.cards) != wanted:
            keep = set(wanted)
            gone = [self.cards.pop(ident) for ident in list(self.cards) if ident not in keep]
            if gone:
                await self.remove_children(gone)
            new_cards = [
                DeviceCard(ident, self.fleet) for ident in wanted if ident not in self.cards
            ]
            for card in new_cards:
                card.list_view = self.list_view
            if new_cards:
                await self.mount_all(new_cards)
                self.cards.update((card.device_id, card) for card in new_cards)
            ordered = [self.cards[ident] for ident in wanted]
            if list(self.children) != ordered:
                self._reorder(ordered)
            self.cards = {card.device_id: card for card in ordered}
        self._update_name_width()
        self.apply_filter()

    def _reorder(self, ordered: list[DeviceCard]) -> None:
        for index, card in enumerate(ordered):
            if self.children[index] is not card:
                self.move_child(card, before=index)

    def _update_name_width(self) -> None:
        longest = max((len(d.name) for d in self.fleet.members()), default=8)
        width = max(8, min(28, longest))
        for card in self.cards.values():
            card.name_width = width

    # ------------------------------------------------------------------ views and filter

    def set_list_view(self, list_view: bool) -> None:
        self.list_view = list_view
        self.set_class(list_view, "-list")
        for card in self.cards.values():
            card.list_view = list_view
        self._update_columns()

    def apply_filter(self, query: str | None = None) -> None:
        if query is not None:
            self.query_text = query
        now = self.fleet.clock()
        for ident, card in self.cards.items():
            device = self.fleet.get(ident)
            visible = device is not None and (
                not self.query_text
                or device_matches(device, self.query_text, now, self.fleet.default_interval)
            )
            if card.display != visible:
                card.display = visible

    def visible_cards(self) -> list[DeviceCard]:
        return [card for card in self.cards.values() if card.display]

    # ------------------------------------------------------------------ repaint

    def on_screen_cards(self) -> set[DeviceCard]:
        """Cards drawn in the last screen update.

        Reads the compositor's visible-widget map (private API): every public way to ask
        "is this widget on screen" (`region`, `virtual_region`, `is_on_screen`) looks the
        widget up in the *full* map, which Textual rebuilds for all 500 cards (~40 ms)
        whenever a widget outside the view was refreshed. Falls back to "all cards".
        """
        try:
            visible = self.screen._compositor.visible_widgets
        except Exception:  # pragma: no cover - a Textual refactor; stay correct, be slower
            return set(self.cards.values())
        return {card for card in self.cards.values() if card in visible}

    def refresh_devices(self, device_ids: set[str]) -> None:
        """Repaint changed cards that are on screen; the others only note that they are
        stale (refreshing a widget outside the view costs a full compositor map rebuild).
        Cards whose height changed are laid out together, at most every LAYOUT_INTERVAL."""
        on_screen = self.on_screen_cards()
        grown = False
        for ident in device_ids:
            card = self.cards.get(ident)
            if card is not None:
                grown |= card.refresh_from_state(on_screen=card in on_screen, defer_layout=True)
        if grown:
            self._request_layout()
        if self.query_text:
            self.apply_filter()

    def _request_layout(self) -> None:
        if self._layout_timer is not None:
            return
        delay = self._last_layout + LAYOUT_INTERVAL - time.monotonic()
        if delay <= 0.001:
            self._layout_now()
        else:
            self._layout_timer = self.set_timer(delay, self._layout_now)

    def _layout_now(self) -> None:
        self._layout_timer = None
        self._last_layout = time.monotonic()
        # The grid caches its arrangement by (size, children added/removed): a card that
        # only changed height would keep its old slot without this.
        self._clear_arrangement_cache()
        self.refresh(layout=True)

    def refresh_all(self) -> None:
        on_screen = self.on_screen_cards()
        for card in self.cards.values():
            card.refresh_from_state(on_screen=card in on_screen)

    def refresh_visible(self) -> None:
        """Once a second: repaint the first line of the cards in view (ages move on)."""
        for card in self.on_screen_cards():
            card.refresh_head()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            # Cards scrolled into view may have changed while they were out of it.
            self.call_after_refresh(self._refresh_stale_on_screen)

    def _refresh_stale_on_screen(self) -> None:
        for card in self.on_screen_cards():
            if card.stale:
                card.refresh_from_state(on_screen=True)

    # ------------------------------------------------------------------ layout

    def on_resize(self, event: events.Resize) -> None:
        self._update_columns()

    def _update_columns(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        columns = 1 if self.list_view else max(1, width // MIN_TILE_WIDTH)
        self.columns = columns
        self.styles.grid_size_columns = columns

    def scroll_to_card(self, card: DeviceCard) -> None:
        """Bring the card, and the line its cursor is on, into view."""
        line = card.cursor_line
        region = card.virtual_region
        if line is not None and region.height > self.scrollable_content_region.height:
            top = region.y + card.gutter.top + line
            self.scroll_to_region(Region(region.x, max(0, top - 1), region.width, 3), animate=False)
        else:
            self.scroll_to_region(region, animate=False)
