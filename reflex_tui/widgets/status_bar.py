"""The header line: connection, device and online counts, test counts by status.

Rendered from state on each (throttled) repaint. It picks the most detailed wording that
fits the terminal, so 80 columns still show every figure.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from reflex_core.events import ConnectionState
from reflex_tui.state import STATUS_ORDER, Fleet, FleetCounts
from reflex_tui.text import format_clock, one_line
from reflex_tui.widgets.render import STATUS_STYLE, STATUS_WORD

Part = str | tuple[str, str]


class StatusBar(Widget):
    """One line at the top of the dashboard."""

    def __init__(self, fleet: Fleet, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self.filter_text = ""

    def _connection(self, verbose: bool) -> list[Part]:
        fleet = self.fleet
        conn = fleet.connection
        if conn.state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED):
            parts: list[Part] = [("● connected", "bold $success")]
        elif conn.state is ConnectionState.RECONNECTING:
            parts = [(f"◌ reconnecting since {format_clock(conn.since)}", "bold $warning")]
        else:
            parts = [("○ disconnected", "bold $error")]
        if verbose and fleet.local_hub and fleet.hub_url:
            embedded = " (embedded)" if fleet.hub_embedded else ""
            parts.append(f" · local hub at {fleet.hub_url}{embedded}")
        elif verbose and fleet.hub_url:
            parts.append(f" · {fleet.hub_url}")
        if fleet.loading:
            parts.append((f" · {fleet.loading}", "$text-muted"))
        return parts

    def _counts(self, verbose: bool, counts: FleetCounts) -> list[Part]:
        parts: list[Part] = []
        sep = " · " if verbose else " "
        noun = "device" if counts.devices == 1 else "devices"
        parts.append(f"{counts.devices} {noun}{sep}{counts.online} online")
        if counts.stale:
            parts.append((f"{sep}{counts.stale} stale", "$warning"))
        parts.append("  " if verbose else " ")
        for status in STATUS_ORDER:
            word = STATUS_WORD[status]
            count = counts.by_status[status]
            style = STATUS_STYLE[status] if count else "$text-muted"
            parts.extend([(f"{word} {count}", style), " "])
        warnings = len(self.fleet.warnings)
        if warnings:
            parts.append((f"⚠{warnings}", "bold $error"))
        if self.filter_text:
            parts.append((f" · filter: {one_line(self.filter_text, 20)}", "$accent"))
        return parts

    def render(self) -> Content:
        width = self.content_region.width or 80
        counts = self.fleet.counts()
        for verbose_left, verbose_right in ((True, True), (False, True), (False, False)):
            left = Content.assemble(*self._connection(verbose_left))
            right = Content.assemble(*self._counts(verbose_right, counts))
            gap = width - left.cell_length - right.cell_length
            if gap >= 1:
                return Content.assemble(left, " " * gap, right)
        line = Content.assemble(left, " ", right)
        return line.truncate(width, ellipsis=True)

    @property
    def plain(self) -> str:
        return self.render().plain
