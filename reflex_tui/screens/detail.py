"""`enter` on a test: its history plotted (backfilled + live), figures, status timeline and
the full last output. Redrawn by the app's throttled repaint when the device changes."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

try:  # textual-plotext draws the graph; without it a wide sparkline stands in
    from textual_plotext import PlotextPlot
except ImportError:  # pragma: no cover - safety net while it is not a declared dependency
    PlotextPlot = None  # type: ignore[assignment,misc]

from reflex_tui.commands import DETAIL_ACTIONS, ActionSpec, bindings
from reflex_tui.messages import ForwardWorkerFailures
from reflex_tui.state import HISTORY_SECONDS, Fleet, TestSeries
from reflex_tui.text import format_age, format_clock, format_number, format_value, inert, one_line
from reflex_tui.widgets.render import (
    SPARK_STYLE,
    STATUS_STYLE,
    STATUS_WORD,
    sparkline,
    status_word,
)

TIMELINE_SHOWN = 6


class DetailScreen(ForwardWorkerFailures, Screen[None]):
    """One test of one device."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(DETAIL_ACTIONS)
    ACTION_SPECS: ClassVar[tuple[ActionSpec, ...]] = DETAIL_ACTIONS

    def __init__(self, fleet: Fleet, device_id: str, test: str) -> None:
        super().__init__()
        self.fleet = fleet
        self.device_id = device_id
        self.test = test

    def compose(self) -> ComposeResult:
        yield Static(id="detail-header")
        yield PlotextPlot(id="plot") if PlotextPlot is not None else Static(id="plot")
        with Horizontal(id="detail-bottom"):
            yield Static(id="stats")
            yield Static(id="timeline")
        yield Static(id="output")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.redraw()

    def _series(self) -> TestSeries | None:
        device = self.fleet.get(self.device_id)
        return None if device is None else device.tests.get(self.test)

    # ------------------------------------------------------------------ updates

    def fleet_changed(self, dirty: set[str], structure: bool) -> None:
        if self.device_id in dirty:
            self.redraw()

    def tick(self) -> None:
        self._draw_header()

    def redraw(self) -> None:
        self._draw_header()
        self._draw_plot()
        self._draw_figures()

    def _draw_header(self) -> None:
        device = self.fleet.get(self.device_id)
        series = self._series()
        name = one_line(device.name if device else self.device_id, 60)
        parts: list[str | tuple[str, str]] = [(name, "bold"), " › ", (one_line(self.test), "bold")]
        if device is None:
            parts.append(("  (device no longer registered)", "$error"))
        if series is not None and series.last is not None:
            word, style = status_word(series.last.status)
            parts += ["  ", (word, style), "  ", format_value(series.last.value, series.last.unit)]
            age = None if series.last_at is None else self.fleet.clock() - series.last_at
            parts.append(("  " + format_age(age), "$text-muted"))
        self.query_one("#detail-header", Static).update(Content.assemble(*parts))

    def _draw_plot(self) -> None:
        if PlotextPlot is None:  # pragma: no cover
            series = self._series()
            values = [] if series is None else series.history.values()
            width = max(10, self.size.width - 2)
            self.query_one("#plot", Static).update(
                Content.styled(sparkline(values, width), SPARK_STYLE)
            )
            return
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        series = self._series()
        now = self.fleet.clock()
        points = [] if series is None else series.history.since(now - HISTORY_SECONDS)
        xs = [(ts - now) / 60.0 for ts, value, _ in points if value is not None]
        ys = [value for _ts, value, _ in points if value is not None]
        unit = series.last.unit if series is not None and series.last is not None else ""
        plt.title(f"{self.test} over the last hour" + (f" ({unit})" if unit else ""))
        plt.xlabel("minutes ago")
        if xs:
            plt.plot(xs, ys, marker="braille")
            plt.xlim(min(min(xs), -1.0), 0.0)
        else:
            plt.xlim(-60.0, 0.0)
        plot.refresh()

    def _draw_figures(self) -> None:
        series = self._series()
        stats_widget = self.query_one("#stats", Static)
        timeline_widget = self.query_one("#timeline", Static)
        output_widget = self.query_one("#output", Static)
        if series is None or series.last is None:
            stats_widget.update(Content("No results for this test yet."))
            timeline_widget.update(Content(""))
            output_widget.update(Content(""))
            return
        unit = one_line(series.last.unit, 6)
        stats = series.stats()
        lines: list[str | tuple[str, str]] = [
            ("Last   ", "$text-muted"),
            f"{format_number(stats.last)}{unit}\n",
            ("Min    ", "$text-muted"),
            f"{format_number(stats.minimum)}{unit}\n",
            ("Max    ", "$text-muted"),
            f"{format_number(stats.maximum)}{unit}\n",
            ("Avg    ", "$text-muted"),
            f"{format_number(stats.average)}{unit}\n",
            ("Points ", "$text-muted"),
            f"{stats.count} of {len(series.history)}",
        ]
        stats_widget.update(Content.assemble(*lines))
        timeline: list[str | tuple[str, str]] = [("Status changes (newest first)\n", "bold")]
        changes = series.transitions()
        shown = list(reversed(changes))[:TIMELINE_SHOWN]
        for index, (ts, status) in enumerate(shown):
            previous = shown[index + 1][1] if index + 1 < len(shown) else None
            timeline.append((format_clock(ts) + "  ", "$text-muted"))
            if previous is not None:
                timeline += [(STATUS_WORD[previous], STATUS_STYLE[previous]), " → "]
            timeline.append((STATUS_WORD[status], STATUS_STYLE[status]))
            timeline.append("\n")
        if len(changes) > TIMELINE_SHOWN:
            timeline.append((f"… {len(changes) - TIMELINE_SHOWN} earlier", "$text-muted"))
        timeline_widget.update(Content.assemble(*timeline).rstrip())
        result = series.last
        text = inert(result.output)
        if result.long_output:
            text += "\n" + inert(result.long_output, keep_newlines=True)
        output_widget.update(Content.assemble(("Last output\n", "bold"), text or "(no output)"))

    def action_back(self) -> None:
        self.app.pop_screen()
