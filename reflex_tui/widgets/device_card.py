"""One device: a tile in the grid, or a row (expanded when selected) in the list view.

A card is a single widget that renders its whole body from state, not a tree of child
widgets: a new result only marks the card for repaint (no widgets created or removed per
result), and only cards on screen are ever rendered.

Rendering uses Textual's line API (`render_line`) with a per-line cache: the first line
(presence and age) changes every second, the test rows only when the device reports or
the cursor moves, so a clock tick or a key press re-renders one or two lines, not twenty.
"""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget

from reflex_tui.state import Fleet
from reflex_tui.text import one_line
from reflex_tui.widgets.render import (
    STATUS_WORD,
    card_height,
    card_rows,
    list_height,
    list_row,
    list_rows,
    presence_line,
)


class DeviceCard(Widget):
    """Renders `fleet.devices[device_id]`; `refresh_from_state()` after it changed."""

    ALLOW_SELECT = False  # lines are rendered one by one; mouse text selection would not map

    class Clicked(Message):
        """The card was clicked: select it (and the test row under the pointer)."""

        def __init__(self, card: DeviceCard, line: int) -> None:
            super().__init__()
            self.card = card
            self.line = line

    selected: reactive[bool] = reactive(False)
    """This card has the cursor (highlighted border; expanded in the list view).

    Not a layout reactive: a tile keeps its height when selected, and a screen layout
    with 500 cards costs ~100 ms; the list view, where the row expands, asks for one."""
    cursor: reactive[str | None] = reactive(None)
    """The selected test (or disabled test) name, when `selected`."""
    list_view: reactive[bool] = reactive(False, layout=True)
    """Render as a list row instead of a tile."""
    name_width: reactive[int] = reactive(16, layout=True)
    """Width of the name column in the list view (shared by all rows)."""

    def __init__(self, device_id: str, fleet: Fleet) -> None:
        super().__init__(classes="device-card")
        self.device_id = device_id
        self.fleet = fleet
        self._rows_key: tuple[object, ...] | None = None
        self._rows: list[Content] = []
        self._cursor_line: int | None = None
        self._head_key: tuple[object, ...] | None = None
        self._head = Content("")
        self._strip_env: tuple[object, ...] | None = None
        self._strips: dict[int, tuple[Content, Strip]] = {}
        self._lines = 0
        self.stale = False
        """Changed while out of view: repaint when it scrolls in."""

    # ------------------------------------------------------------------ reactives

    def watch_selected(self, selected: bool) -> None:
        self.set_class(selected, "-selected")
        if self.list_view:
            self.refresh(layout=True)

    def watch_list_view(self, list_view: bool) -> None:
        self.set_class(list_view, "-list")
        self._update_titles()

    def on_mount(self) -> None:
        self._update_titles()

    def watch_cursor(self) -> None:
        self.refresh()

    # ------------------------------------------------------------------ content

    def lines(self, width: int) -> list[Content]:
        """The card's lines at `width`: a head line (rebuilt when the shown age changes)
        and the rows (rebuilt when the device, the cursor or the view changes)."""
        device = self.fleet.get(self.device_id)
        if device is None:
            return [Content("")]
        rows_key = (device.version, self.selected, self.cursor, self.list_view, width)
        if rows_key != self._rows_key:
            if not self.list_view:
                self._rows, self._cursor_line = card_rows(
                    device, width, self.cursor, selected=self.selected
                )
            elif self.selected:
                self._rows, self._cursor_line = list_rows(device, width, self.cursor)
            else:
                self._rows, self._cursor_line = [], None
            self._rows_key = rows_key
        head_key = (*rows_key, int(self.fleet.clock()), self.name_width)
        if head_key != self._head_key:
            if self.list_view:
                self._head = list_row(
                    device, self.fleet, width, self.name_width, selected=self.selected
                )
            else:
                self._head = presence_line(device, self.fleet, width)
            self._head_key = head_key
        return [self._head, *self._rows]

    def render(self) -> Content:
        return Content("\n").join(self.lines(self.size.width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.visual_style
        env = (width, style)
        if env != self._strip_env:
            self._strips.clear()
            self._strip_env = env
        lines = self.lines(width)
        if y >= len(lines):
            return Strip.blank(width, style.rich_style)
        line = lines[y]
        cached = self._strips.get(y)
        if cached is not None and (cached[0] is line or cached[0].is_same(line)):
            return cached[1]
        strips = Visual.to_strips(self, line, width, 1, style, apply_selection=False)
        strip = strips[0] if strips else Strip.blank(width, style.rich_style)
        self._strips[y] = (line, strip)
        return strip

    def _update_titles(self) -> None:
        device = self.fleet.get(self.device_id)
        if device is None or self.list_view:
            self.border_title = None
            self.border_subtitle = None
            return
        title = one_line(device.name, max_chars=60)
        if self.border_title is None or str(self.border_title) != title:
            self.border_title = Content(title)
        worst = device.worst_status()
        subtitle = STATUS_WORD[worst] if worst is not None else ""
        if str(self.border_subtitle or "") != subtitle:
            self.border_subtitle = Content(subtitle) if subtitle else None
        for status, word in STATUS_WORD.items():
            self.set_class(worst is status, f"-{word.lower()}")

    def height_for(self, width: int) -> int:
        device = self.fleet.get(self.device_id)
        if device is None:
            return 1
        if self.list_view:
            return list_height(device, width, selected=self.selected)
        return card_height(device, width)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        self._lines = self.height_for(width)
        return self._lines

    @property
    def cursor_line(self) -> int | None:
        """Line (within the content) the cursor is on, for scrolling it into view."""
        self.lines(self.size.width or 40)
        return self._cursor_line

    @property
    def plain(self) -> str:
        """The card's text as shown (tests and debugging)."""
        title = "" if self.border_title is None else str(self.border_title)
        body = "\n".join(line.plain for line in self.lines(self.size.width or 40))
        return f"{title}\n{body}"

    # ------------------------------------------------------------------ repaint

    def refresh_from_state(self, *, on_screen: bool = True, defer_layout: bool = False) -> bool:
        """The device changed: repaint, and re-layout if its height changed.

        A card out of view is only marked `stale` (repainted when it scrolls in), unless
        its height changed. The height is a cheap count, not a render. Returns True when
        the height changed; with `defer_layout` the caller then lays out (the grid batches
        those: one screen layout of 500 cards costs ~100 ms).
        """
        width = self.size.width
        if not width:
            self.refresh(layout=True)
            return False
        lines = self.height_for(width)
        if lines != self._lines:
            self._lines = lines
            self._update_titles()
            self.stale = False
            self.refresh(layout=not defer_layout)
            return True
        if on_screen:
            self._update_titles()
            self.stale = False
            self.refresh()
        else:
            self.stale = True
        return False

    def refresh_head(self) -> None:
        """Repaint the first line only (the age moved on): one line, not the card."""
        if self.stale:
            self.refresh_from_state()
        elif self.size.width:
            self.refresh(Region(0, 0, self.size.width, 1))

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Clicked(self, event.y - self.gutter.top))
