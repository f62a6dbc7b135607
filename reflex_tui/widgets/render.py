"""Building the text of cards and rows from state, as `Content` (never markup strings).

Everything from the network goes through `reflex_tui.text.inert()` and into `Content`
objects or (text, style) tuples, which Textual never parses as markup; this is what
keeps `[bold red]` or `[link=...]` in a script's output literal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from textual.content import Content

from reflex_core.protocol import Result
from reflex_tui.state import Device, Fleet, Status, TestSeries
from reflex_tui.text import format_age, format_interval, format_value, inert, one_line
from reflex_tui.thresholds import Level, bar_level, is_percentage

STATUS_WORD: Final = {
    Status.OK: "OK",
    Status.WARNING: "WARN",
    Status.CRITICAL: "CRIT",
    Status.UNKNOWN: "UNKN",
}
STATUS_STYLE: Final = {
    Status.OK: "bold $success",
    Status.WARNING: "bold $warning",
    Status.CRITICAL: "bold $error",
    Status.UNKNOWN: "bold $primary-lighten-2",
}
LEVEL_STYLE: Final = {Level.NORMAL: "$success", Level.WARN: "$warning", Level.DANGER: "$error"}
MUTED: Final = "$text-muted"
SPARK_STYLE: Final = "$primary-lighten-1"
PENDING_MARK: Final = "⧗"
SPARKS: Final = "▁▂▃▄▅▆▇█"
BAR_WIDTH: Final = 6
MAX_SPARK_WIDTH: Final = 40
"""Newest points in a row's sparkline (wider looks empty on a fresh dashboard)."""
VALUE_WIDTH: Final = 7
MAX_NAME_WIDTH: Final = 12
OUTPUT_INDENT: Final = 5
MAX_REJECTED_SHOWN: Final = 3


def status_word(status: Status | None) -> tuple[str, str]:
    if status is None:
        return ("····", MUTED)
    return (STATUS_WORD[status], STATUS_STYLE[status])


def sparkline(values: Sequence[float | None], width: int) -> str:
    """Unicode block sparkline of the newest `width` values (blank where none)."""
    if width <= 0:
        return ""
    shown = list(values[-width:])
    numbers = [v for v in shown if v is not None and math.isfinite(v)]
    if not numbers:
        return " " * width
    low, high = min(numbers), max(numbers)
    span = high - low
    chars = []
    for value in shown:
        if value is None or not math.isfinite(value):
            chars.append(" ")
        elif span == 0:
            chars.append(SPARKS[3])
        else:
            chars.append(SPARKS[min(7, int((value - low) / span * 7.999))])
    return "".join(chars).rjust(width)


def bar(value: float, width: int) -> str:
    """A 0..100 % bar with eighth-cell resolution."""
    fraction = min(max(value / 100.0, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width, "░")[:width]


def fit(content: Content, width: int) -> Content:
    """Cut to `width` cells with an ellipsis, then pad, so every row has the same width."""
    if content.cell_length > width:
        content = content.truncate(width, ellipsis=True)
    return content


def test_row(series: TestSeries, width: int, name_width: int, *, selected: bool = False) -> Content:
    """`WARN disk     82%   █████░ ▂▃▅▆▅▆` (status word, name, value, bar, sparkline)."""
    result = series.last
    assert result is not None
    word, word_style = status_word(result.status)
    name = one_line(series.name)
    if len(name) > name_width:
        name = name[: name_width - 1] + "…"
    value = format_value(result.value, result.unit)
    parts: list[str | tuple[str, str] | Content] = [
        (f"{word:<4}", word_style),
        " ",
        name.ljust(name_width),
        " ",
        value.rjust(VALUE_WIDTH),
        " ",
    ]
    used = 4 + 1 + name_width + 1 + max(VALUE_WIDTH, len(value)) + 1
    if is_percentage(result) and result.value is not None:
        parts.append((bar(result.value, BAR_WIDTH), LEVEL_STYLE[bar_level(result)]))
        parts.append(" ")
        used += BAR_WIDTH + 1
    spark_width = min(MAX_SPARK_WIDTH, max(0, width - used))
    if spark_width >= 3:
        parts.append((sparkline(series.history.values(spark_width), spark_width), SPARK_STYLE))
    row = fit(Content.assemble(*parts), width)
    if selected:
        row = row.extend_right(max(0, width - row.cell_length)).stylize("reverse")
    return row


def output_row(result: Result, width: int, indent: int = OUTPUT_INDENT) -> Content:
    text = inert(result.output) or "(no output)"
    return fit(Content.assemble(" " * indent, (text, MUTED)), width)


def presence_line(device: Device, fleet: Fleet, width: int) -> Content:
    """`● online · every 10s · 4s ago` (with pending interval, stale, offline); tersest
    wording that fits."""
    now = fleet.clock()
    if fleet.is_stale(device, now):
        state: tuple[str, str] = (
            "◌ stale, online" if device.online else "◌ stale, offline",
            "bold $warning",
        )
    elif device.online:
        state = ("● online", "$success")
    else:
        state = ("○ offline", MUTED)
    interval = format_interval(device.shown_interval(fleet.default_interval))
    pending: tuple[str, str] | str = ""
    if device.pending_interval is not None:
        pending = (f"→{format_interval(device.pending_interval)}{PENDING_MARK}", "$warning")
    age = None if device.last_update is None else now - device.last_update
    when = "no results yet" if age is None else format_age(age)
    line = Content.assemble(state, " · every ", interval, pending, " · ", when)
    if line.cell_length > width:
        line = Content.assemble(state, " · ", interval, pending, " · ", when)
    return fit(line, width)


def disabled_lines(device: Device, width: int, cursor: str | None) -> list[Content]:
    """`Disabled: swap, load⧗` wrapped to `width`; the cursor's test highlighted."""
    names = device.disabled_tests()
    if not names:
        return []
    lines: list[Content] = []
    current: list[str | tuple[str, str]] = [("Disabled:", MUTED)]
    used = len("Disabled:")
    for name in names:
        label = one_line(name) + (PENDING_MARK if device.is_pending_test(name) else "")
        if used + 1 + len(label) > width and used > len("Disabled:"):
            lines.append(fit(Content.assemble(*current), width))
            current, used = ["         "], 9
        current.append(" ")
        style = "reverse" if name == cursor else MUTED
        if device.is_pending_test(name) and name != cursor:
            style = "$warning"
        current.append((label, style))
        used += 1 + len(label)
    lines.append(fit(Content.assemble(*current), width))
    return lines


def disabled_height(device: Device, width: int) -> int:
    """Lines `disabled_lines` produces, without building them."""
    names = device.disabled_tests()
    if not names:
        return 0
    lines, used = 1, len("Disabled:")
    for name in names:
        label = len(one_line(name)) + (1 if device.is_pending_test(name) else 0)
        if used + 1 + label > width and used > len("Disabled:"):
            lines, used = lines + 1, 9
        used += 1 + label
    return lines


def problems_height(device: Device) -> int:
    rejected = min(len(device.rejected), MAX_REJECTED_SHOWN)
    rejected += 1 if len(device.rejected) > MAX_REJECTED_SHOWN else 0
    return rejected + (device.spoof is not None) + (device.problem is not None)


def card_height(device: Device, width: int) -> int:
    """Lines of `card_body` (cheap: decides re-layout for cards that are not on screen)."""
    active = len(device.active_tests())
    return 1 + max(1, 2 * active) + disabled_height(device, width) + problems_height(device)


def list_height(device: Device, width: int, *, selected: bool) -> int:
    if not selected:
        return 1
    return card_height(device, max(10, width - 4))


def problem_lines(device: Device, width: int) -> list[Content]:
    """Rejected scripts (red, with reason), spoofing and malformed-message warnings."""
    lines: list[Content] = []
    for rejection in device.rejected[:MAX_REJECTED_SHOWN]:
        text = f"✗ {one_line(rejection.file, 64)}: {one_line(rejection.reason, 200)}"
        lines.append(fit(Content.styled(text, "bold $error"), width))
    hidden = len(device.rejected) - MAX_REJECTED_SHOWN
    if hidden > 0:
        lines.append(Content.styled(f"✗ … and {hidden} more rejected", "$error"))
    if device.spoof is not None:
        who = one_line(device.spoof.publisher, 32)
        text = f"⚠ {device.spoof.count} msg(s) from {who!r} ignored (not {device.id})"
        lines.append(fit(Content.styled(text, "bold $error"), width))
    if device.problem is not None:
        lines.append(fit(Content.styled(f"⚠ {one_line(device.problem)}", "$warning"), width))
    return lines


def name_width_for(device: Device) -> int:
    names = [len(t.name) for t in device.active_tests()]
    return max(4, min(MAX_NAME_WIDTH, max(names, default=4)))


def card_rows(
    device: Device, width: int, cursor: str | None, *, selected: bool
) -> tuple[list[Content], int | None]:
    """Every line of a tile card below the presence line, and the index (counting the
    presence line as 0) of the line the cursor is on, to scroll to it."""
    lines: list[Content] = []
    cursor_line: int | None = None
    active = device.active_tests()
    name_width = name_width_for(device)
    for series in active:
        is_cursor = selected and series.name == cursor
        if is_cursor:
            cursor_line = len(lines) + 1
        lines.append(test_row(series, width, name_width, selected=is_cursor))
        assert series.last is not None
        lines.append(output_row(series.last, width))
    if not active:
        lines.append(Content.styled("no results yet", MUTED))
    disabled = disabled_lines(device, width, cursor if selected else None)
    if selected and cursor in device.disabled_tests():
        cursor_line = len(lines) + 1
    lines.extend(disabled)
    lines.extend(problem_lines(device, width))
    return lines, cursor_line


def card_body(
    device: Device, fleet: Fleet, width: int, cursor: str | None, *, selected: bool
) -> tuple[Content, int | None]:
    """The inside of a tile card, and the line the cursor is on."""
    rows, cursor_line = card_rows(device, width, cursor, selected=selected)
    return Content("\n").join([presence_line(device, fleet, width), *rows]), cursor_line


def counts_summary(device: Device) -> list[str | tuple[str, str]]:
    parts: list[str | tuple[str, str]] = []
    for status, count in device.status_counts().items():
        if count:
            word, style = status_word(status)
            parts.extend([(f"{count} {word}", style), " "])
    return parts


def list_row(
    device: Device, fleet: Fleet, width: int, name_width: int, *, selected: bool
) -> Content:
    """One line per device: `▸ web1   ● online · every 10s · 4s ago   5 OK 1 WARN`."""
    marker = "▾ " if selected else "▸ "
    name = one_line(device.name)
    if len(name) > name_width:
        name = name[: name_width - 1] + "…"
    presence = presence_line(device, fleet, 40)
    worst = device.worst_status()
    word, style = status_word(worst)
    parts: list[str | tuple[str, str] | Content] = [
        (marker, "$primary-lighten-2"),
        (f"{word:<4}", style),
        " ",
        (name.ljust(name_width), "bold"),
        "  ",
        presence,
        "  ",
        *counts_summary(device),
    ]
    if device.rejected or device.spoof is not None:
        parts.append(("⚠", "bold $error"))
    row = fit(Content.assemble(*parts), width)
    if selected:
        row = row.stylize("bold")
    return row


def list_rows(device: Device, width: int, cursor: str | None) -> tuple[list[Content], int | None]:
    """The expanded part under a selected device's list row (its tests, indented)."""
    inner = max(10, width - 4)
    rows, inner_cursor = card_rows(device, inner, cursor, selected=True)
    lines = [Content.assemble("    ", line) for line in rows]
    return lines, (inner_cursor if inner_cursor is not None else 0)


def list_body(
    device: Device,
    fleet: Fleet,
    width: int,
    name_width: int,
    cursor: str | None,
    *,
    selected: bool,
) -> tuple[Content, int | None]:
    """List view: the device line, and when selected its tests underneath (expanded)."""
    head = list_row(device, fleet, width, name_width, selected=selected)
    if not selected:
        return head, None
    rows, cursor_line = list_rows(device, width, cursor)
    return Content("\n").join([head, *rows]), cursor_line
