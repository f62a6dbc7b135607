"""When to run the next round, and how to run one round with bounded concurrency.

Timing is pure (every function takes ``now``; the daemon passes
``loop.time()``) so it can be tested exhaustively without waiting.

Drift correction, as arq's cron does it: rounds sit on a fixed grid
``anchor + k * interval``. A round that takes 0.3 s does not move the next one
0.3 s later, so the dashboard sees results at a steady cadence; a round that
overruns several ticks does not cause a burst of catch-up rounds either (the
missed ticks are skipped and counted, because a burst would only measure the
same moment again and load the host when it is already slow).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = [
    "Schedule",
    "next_tick",
    "run_round",
    "sleep_until",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def next_tick(anchor: float, interval: float, now: float) -> tuple[float, int]:
    """First grid time ``anchor + k*interval`` (k >= 1) that is not before ``now``.

    Returns ``(time, skipped)`` where ``skipped = k - 1`` is the number of grid
    ticks that passed while the previous round was still running. If ``now``
    lands exactly on a tick, that tick is returned (run at once, not one
    interval later).
    """
    if not interval > 0 or not math.isfinite(interval):
        raise ValueError(f"interval must be a positive number, got {interval!r}")
    k = 1
    if now > anchor + interval:
        k = math.ceil((now - anchor) / interval)
    due = anchor + k * interval
    # Floating point: (now - anchor) / interval can round either way.
    while due < now:
        k += 1
        due = anchor + k * interval
    while k > 1 and anchor + (k - 1) * interval >= now:
        k -= 1
        due = anchor + k * interval
    return due, k - 1


class Schedule:
    """The round schedule of one agent: a grid that only moves on purpose.

    Usage in the daemon::

        schedule = Schedule(interval, start=loop.time())   # first round at start
        while True:
            if await sleep_until(schedule.due, wake):      # wake: set on interval change
                continue                                    # due may have moved: re-read it
            await run_round(...)
            schedule.advance(loop.time())

    ``skipped`` counts ticks skipped because rounds overran (worth a log line
    when it grows); ``last`` is when the last round was due.
    """

    __slots__ = ("due", "interval", "last", "skipped")

    def __init__(self, interval: float, start: float) -> None:
        _check_interval(interval)
        self.interval = interval
        self.due = start
        self.last: float | None = None
        self.skipped = 0

    def __repr__(self) -> str:
        return (
            f"Schedule(interval={self.interval!r}, due={self.due!r}, "
            f"last={self.last!r}, skipped={self.skipped!r})"
        )

    def advance(self, now: float) -> float:
        """A round that was due at ``self.due`` has finished at ``now``: set the next one."""
        self.last = self.due
        self.due, skipped = next_tick(self.due, self.interval, now)
        self.skipped += skipped
        return self.due

    def set_interval(self, interval: float, now: float) -> float:
        """Change the interval at once; the grid is re-based on the last round.

        The next round comes ``interval`` after the last round's start, or now
        if that moment has already passed (shortening 60 s to 5 s, 20 s after
        a round, runs one now instead of waiting 40 s). Before any round has
        run, the pending first round stays where it is.
        """
        _check_interval(interval)
        self.interval = interval
        if self.last is not None:
            self.due = max(self.last + interval, now)
        return self.due

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` until the next round (never negative)."""
        return max(0.0, self.due - now)


def _check_interval(interval: float) -> None:
    if not interval > 0 or not math.isfinite(interval):
        raise ValueError(f"interval must be a positive number, got {interval!r}")


async def sleep_until(deadline: float, wake: asyncio.Event | None = None) -> bool:
    """Sleep until ``loop.time() >= deadline`` or ``wake`` is set; True if woken early.

    Clears ``wake`` when it fired, so one ``set()`` (an interval change, a
    ``refresh``) wakes the scheduler exactly once.
    """
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if wake is None:
        if delay > 0:
            await asyncio.sleep(delay)
        return False
    if wake.is_set():
        wake.clear()
        return True
    if delay <= 0:
        return False
    try:
        async with asyncio.timeout(delay):
            await wake.wait()
    except TimeoutError:
        return False
    wake.clear()
    return True


async def run_round(
    scripts: Iterable[T],
    run_one: Callable[[T], Awaitable[R]],
    limit: int = 4,
    *,
    on_error: Callable[[T, Exception], R] | None = None,
) -> list[R]:
    """Run ``run_one`` for every script, at most ``limit`` at a time; results in input order.

    One failing check never stops the others: an exception from ``run_one`` is
    logged and replaced by ``on_error(script, exc)`` (e.g. an "unknown" result),
    or the script is left out of the results when there is no ``on_error`` (or
    ``on_error`` fails too). Cancelling the round cancels every run in it.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    items = list(scripts)
    if not items:
        return []
    semaphore = asyncio.Semaphore(limit)
    missing = object()

    async def guarded(item: T) -> object:
        async with semaphore:
            try:
                return await run_one(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("check %s failed inside the agent: %r", item, exc, exc_info=True)
                if on_error is None:
                    return missing
                try:
                    return on_error(item, exc)
                except Exception:
                    log.exception("on_error failed for %s", item)
                    return missing

    # TaskGroup rather than gather: if the round is cancelled, it waits for every
    # run to unwind (each kills its own process group) before returning.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(guarded(item)) for item in items]
    results: list[R] = []
    for item, task in zip(items, tasks, strict=True):
        if task.cancelled():
            log.warning("check %s was cancelled", item)
            continue
        outcome = task.result()
        if outcome is not missing:
            results.append(outcome)  # type: ignore[arg-type]
    return results
