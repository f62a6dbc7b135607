"""Monitoring Plugins range thresholds (``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``).

Shared by the agent (parsing plugin output) and the dashboard (colouring bars
by the script's own thresholds), which must not import each other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["NagiosRange", "classify", "parse_range", "plugin_number", "threshold_breached"]

# A number as plugins write it. Scientific notation is discouraged by the guidelines
# but harmless to accept; "inf"/"nan" are not numbers a plugin means to report.
NUMBER_PATTERN = r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?"
_RANGE_END_RE = re.compile(rf"^(?P<num>{NUMBER_PATTERN})(?:%|[A-Za-z]{{1,3}})?$")


def plugin_number(text: str) -> float | None:
    """Parse a plugin number; a lone comma is taken as a decimal separator.

    Scripts run under a German locale print ``0,5``; the guidelines forbid it,
    but dropping the value would help nobody.
    """
    text = text.strip()
    if not text:
        return None
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class NagiosRange:
    """A parsed ``[@][start:][end]`` range; ``inside`` is the ``@`` (alert inside) form."""

    start: float
    end: float
    inside: bool = False

    def breached(self, value: float) -> bool:
        """True when ``value`` should raise the alert this range describes."""
        within = self.start <= value <= self.end
        return within if self.inside else not within


def parse_range(spec: str) -> NagiosRange:
    """Parse a range expression (guidelines: "Range expressions"); ValueError if invalid.

    ``10`` = alert outside 0..10, ``10:`` = below 10, ``~:10`` = above 10,
    ``10:20`` = outside 10..20, ``@10:20`` = inside 10..20 (endpoints included).
    A trailing unit on an endpoint (``80%``) is tolerated.
    """
    text = spec.strip()
    inside = text.startswith("@")
    if inside:
        text = text[1:]
    if not text:
        raise ValueError(f"empty range: {spec!r}")
    if ":" in text:
        start_text, _, end_text = text.partition(":")
        if start_text == "~":
            start = -math.inf
        elif start_text == "":
            start = 0.0
        else:
            start = _range_number(start_text, spec)
        end = math.inf if end_text == "" else _range_number(end_text, spec)
    else:
        start, end = 0.0, _range_number(text, spec)
    if start > end:
        raise ValueError(f"range start above end: {spec!r}")
    return NagiosRange(start=start, end=end, inside=inside)


def _range_number(text: str, spec: str) -> float:
    match = _RANGE_END_RE.match(text.strip())
    number = plugin_number(match.group("num")) if match else None
    if number is None:
        raise ValueError(f"not a range expression: {spec!r}")
    return number


def threshold_breached(value: float | None, spec: str | None) -> bool:
    """Does ``value`` breach the range ``spec``? False when either is missing or invalid.

    Lenient on purpose: the dashboard colours bars with this, and a plugin's
    odd threshold text must not turn a bar red or raise in the UI.
    """
    if value is None or not spec or (isinstance(value, float) and math.isnan(value)):
        return False
    try:
        return parse_range(spec).breached(value)
    except ValueError:
        return False


def classify(value: float | None, warn: str | None, crit: str | None) -> int:
    """0/1/2 for a value against warn/crit ranges (critical wins), as a plugin would."""
    if threshold_breached(value, crit):
        return 2
    if threshold_breached(value, warn):
        return 1
    return 0
