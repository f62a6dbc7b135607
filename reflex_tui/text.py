"""Making untrusted text inert, and small formatting helpers; no Textual imports.

Script output, host names, file names and rejection reasons all come from the
network. Rendering them must never let them act: no Rich/Textual markup (the
widgets only ever wrap them in `Content`/`Text` objects, never in markup
strings), and no terminal control sequences (ANSI colours, cursor movement,
OSC 8 links, bidi overrides that reorder what the operator reads). `inert()`
turns every such character into a visible stand-in, so the operator still
sees that something odd was sent.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from typing import Final

_ANSI_RE: Final = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]           # CSI ... final byte (colours, cursor moves)
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC ... BEL or ST (titles, hyperlinks)
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?    # DCS / SOS / PM / APC strings
    | \x1b[@-Z\\-_]                    # two-byte escapes
    """,
    re.VERBOSE,
)

_ESCAPE_PICTURE: Final = "␛"
_REPLACEMENT: Final = "\ufffd"


def _stand_in(char: str) -> str:
    code = ord(char)
    if code == 0x1B:
        return _ESCAPE_PICTURE
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400 "control pictures": ␀ ␁ ... ␟
    if code == 0x7F:
        return "␡"
    return _REPLACEMENT


def _needs_stand_in(char: str) -> bool:
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    # Format characters (bidi overrides U+202E, zero-width joiners, BOM) can reorder or hide
    # text; surrogates and private use cannot be shown reliably over ssh.
    return unicodedata.category(char) in ("Cf", "Cs", "Co")


def inert(text: object, *, keep_newlines: bool = False, max_chars: int | None = None) -> str:
    """`text` with ANSI escape sequences and control characters made visible and harmless.

    Escape sequences are removed whole and replaced by one ␛ so their payload (an OSC 8 URL,
    a colour code) does not pollute the line; other control characters become their Unicode
    "control picture". Tabs become spaces. Newlines are kept only with `keep_newlines`.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(0, max_chars - 1)] + "…"
    if text.isascii() and text.isprintable():
        return text  # fast path: the vast majority of outputs
    text = text.replace("\r\n", "\n").replace("\t", " ")
    if "\x1b" in text:
        text = _ANSI_RE.sub(_ESCAPE_PICTURE, text)
    out: list[str] = []
    for char in text:
        if char == "\n" and keep_newlines:
            out.append(char)
        elif _needs_stand_in(char):
            out.append(_stand_in(char))
        else:
            out.append(char)
    return "".join(out)


def one_line(text: object, max_chars: int | None = None) -> str:
    """`inert` for places that have exactly one line (card rows, table cells)."""
    return inert(text, max_chars=max_chars)


def format_number(value: float | None) -> str:
    """Compact, width-stable numbers: 0.12, 12.5, 123, 12.3k, 4.5M."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.1f}G"
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.1f}k"
    if float(value).is_integer():
        return str(int(value))
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_value(value: float | None, unit: str) -> str:
    """Value with its unit as the card shows it (`82%`, `0.12`, `1.5GB`)."""
    if value is None:
        return "–"
    return format_number(value) + one_line(unit, max_chars=6)


def format_age(seconds: float | None) -> str:
    """How long ago, coarse enough to stay stable between repaints: 4s, 3m, 2h, 5d."""
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86_400)}d ago"


def format_clock(ts: float | None) -> str:
    """hh:mm:ss in local time (the operator's wall clock), or '–'."""
    if ts is None:
        return "–"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def format_datetime(ts: float | None) -> str:
    """yyyy-mm-dd hh:mm in local time, or '–'."""
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def format_short_datetime(ts: float | None) -> str:
    """yy-mm-dd hh:mm in local time (table columns at 80 columns), or '–'."""
    if ts is None:
        return "–"
    return time.strftime("%y-%m-%d %H:%M", time.localtime(ts))


def format_interval(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def format_size(size: int | None) -> str:
    if size is None:
        return "–"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"
