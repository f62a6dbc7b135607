"""PubNub-style timetokens: 17-digit, wall-clock based, strictly increasing.

Clients keep timetokens as subscribe cursors and history bounds, so a token the
hub hands out must never be handed out again and must order after every earlier
one, even across a restart or a clock step backwards. The clock therefore
remembers the last value it issued (the store persists it) and bumps by one
when the wall clock has not moved past it.
"""

from __future__ import annotations

import time

#: Timetokens count 100 ns units since the Unix epoch (PubNub's definition).
TICKS_PER_SECOND = 10_000_000


def wall_clock_timetoken() -> int:
    """The current wall-clock time as a timetoken, without any ordering guarantee."""
    return time.time_ns() // 100


class TimetokenClock:
    """Issues strictly increasing timetokens that track the wall clock."""

    def __init__(self, floor: int = 0) -> None:
        # Every issued token is greater than `floor`, so a restarted hub
        # seeded with the last persisted token never reissues an old one.
        self._last = floor

    @property
    def last(self) -> int:
        """The most recently issued token (or the floor if none was issued yet)."""
        return self._last

    def next(self) -> int:
        """A fresh token, greater than every token issued before."""
        now = wall_clock_timetoken()
        if now <= self._last:
            now = self._last + 1
        self._last = now
        return now

    def advance_to(self, value: int) -> None:
        """Never issue a token at or below `value` (used when loading persisted state)."""
        if value > self._last:
            self._last = value


def parse_timetoken(raw: str | None) -> int | None:
    """Parse a timetoken query value; None when absent, ValueError when malformed."""
    if raw is None or raw == "":
        return None
    value = int(raw)
    # SQLite integers are signed 64-bit; a real timetoken is far below that.
    if not 0 <= value < 2**63:
        raise ValueError("timetoken out of range")
    return value
