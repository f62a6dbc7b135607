"""Bar levels for percentage values: the script's own thresholds, else the seed's 70/90.

The range semantics live in `reflex_core.ranges`, shared with the agent.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from reflex_core.protocol import Perf, Result
from reflex_core.ranges import threshold_breached

SEED_WARN_PERCENT: Final = 70.0
SEED_DANGER_PERCENT: Final = 90.0


class Level(IntEnum):
    NORMAL = 0
    WARN = 1
    DANGER = 2


def _perf_for(result: Result) -> Perf | None:
    for item in result.perf:
        if item.value is not None and item.value == result.value:
            return item
    return result.perf[0] if result.perf else None


def bar_level(result: Result) -> Level:
    """How alarming the bar of a percentage result should look."""
    value = result.value
    if value is None:
        return Level.NORMAL
    perf = _perf_for(result)
    if perf is not None and (perf.warn or perf.crit):
        if threshold_breached(value, perf.crit):
            return Level.DANGER
        if threshold_breached(value, perf.warn):
            return Level.WARN
        return Level.NORMAL
    if value >= SEED_DANGER_PERCENT:
        return Level.DANGER
    if value >= SEED_WARN_PERCENT:
        return Level.WARN
    return Level.NORMAL


def is_percentage(result: Result) -> bool:
    return result.value is not None and result.unit.strip() == "%"
