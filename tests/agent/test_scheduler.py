"""Round timing (pure, drift-corrected) and bounded, fault-contained rounds."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflex_agent.perfdata import ParsedOutput
from reflex_agent.runner import parse_outcome, run_script
from reflex_agent.scheduler import Schedule, next_tick, run_round, sleep_until

pytestmark = pytest.mark.timeout(30)


# --- next_tick -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "interval", "now", "due", "skipped"),
    [
        (0, 10, 0, 10, 0),  # instant round: next tick, not the same one
        (0, 10, 0.3, 10, 0),  # a slow round does not push the schedule
        (0, 10, 9.999, 10, 0),
        (0, 10, 10, 10, 0),  # finished exactly on the tick: run now
        (0, 10, 10.5, 20, 1),  # overran one tick: skip it, no burst
        (0, 10, 25, 30, 2),
        (0, 10, 1000.1, 1010, 100),
        (0, 10, -5, 10, 0),  # clock before the anchor: still the next grid point
        (100, 60, 130, 160, 0),
        (100, 60, 220, 220, 1),
        (5, 2.5, 11, 12.5, 2),
    ],
)
def test_next_tick(anchor: float, interval: float, now: float, due: float, skipped: int) -> None:
    assert next_tick(anchor, interval, now) == (pytest.approx(due), skipped)


@pytest.mark.parametrize("now", [0.3, 0.30000000000000004, 0.7, 1.0, 123.4])
def test_next_tick_floating_point_never_lands_before_now(now: float) -> None:
    due, skipped = next_tick(0.0, 0.1, now)
    assert due >= now
    assert due - now < 0.1 + 1e-9
    assert skipped == round(due / 0.1) - 1


@pytest.mark.parametrize("interval", [0, -1, math.nan, math.inf])
def test_next_tick_rejects_bad_intervals(interval: float) -> None:
    with pytest.raises(ValueError):
        next_tick(0, interval, 1)


@given(
    anchor=st.floats(min_value=-1e6, max_value=1e6),
    interval=st.floats(min_value=0.01, max_value=86400),
    lag=st.floats(min_value=0, max_value=1e6),
)
def test_next_tick_properties(anchor: float, interval: float, lag: float) -> None:
    now = anchor + lag
    due, skipped = next_tick(anchor, interval, now)
    k = skipped + 1
    assert due >= now
    assert due == anchor + k * interval  # on the grid
    assert skipped >= 0
    if k > 1:  # skipping is only ever for ticks that are really in the past
        assert anchor + (k - 1) * interval < now


# --- Schedule --------------------------------------------------------------------------------


def test_schedule_starts_at_start_and_does_not_drift() -> None:
    schedule = Schedule(10, start=1000.0)
    assert schedule.due == 1000.0
    for n in range(1, 1001):
        # Each round takes 0.3 s: a naive "sleep(interval)" would drift by 300 s.
        assert schedule.advance(schedule.due + 0.3) == pytest.approx(1000.0 + 10 * n)
    assert schedule.skipped == 0


def test_schedule_skips_missed_ticks_instead_of_bursting() -> None:
    schedule = Schedule(10, start=0.0)
    schedule.advance(0.2)  # due 10
    assert schedule.advance(35.0) == 40.0  # the 10 s round took 25 s: 20 and 30 skipped
    assert schedule.skipped == 2
    assert schedule.advance(40.1) == 50.0


def test_set_interval_shorter_runs_now_when_already_overdue() -> None:
    schedule = Schedule(60, start=0.0)
    schedule.advance(0.5)  # last round was due at 0, next at 60
    assert schedule.set_interval(5, now=20.0) == 20.0  # 0 + 5 has passed: run now
    assert schedule.advance(20.2) == 25.0  # and the grid is re-based on it


def test_set_interval_shorter_not_yet_overdue() -> None:
    schedule = Schedule(60, start=0.0)
    schedule.advance(0.5)
    assert schedule.set_interval(5, now=2.0) == 5.0


def test_set_interval_longer_counts_from_the_last_round() -> None:
    schedule = Schedule(10, start=0.0)
    schedule.advance(0.5)
    assert schedule.set_interval(300, now=3.0) == 300.0
    assert schedule.delay(3.0) == 297.0


def test_set_interval_before_the_first_round_keeps_it() -> None:
    schedule = Schedule(10, start=50.0)
    assert schedule.set_interval(30, now=50.0) == 50.0
    schedule.advance(50.1)
    assert schedule.due == 80.0


def test_schedule_rejects_bad_intervals() -> None:
    with pytest.raises(ValueError):
        Schedule(0, start=0)
    schedule = Schedule(10, start=0)
    with pytest.raises(ValueError):
        schedule.set_interval(-1, now=0)
    assert schedule.interval == 10


def test_delay_is_never_negative() -> None:
    schedule = Schedule(10, start=0)
    assert schedule.delay(-3) == 3
    assert schedule.delay(5) == 0


# --- sleep_until -----------------------------------------------------------------------------


async def test_sleep_until_past_deadline_returns_at_once() -> None:
    loop = asyncio.get_running_loop()
    assert await sleep_until(loop.time() - 1) is False
    assert await sleep_until(loop.time() - 1, asyncio.Event()) is False


async def test_sleep_until_reaches_deadline() -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.05
    assert await sleep_until(deadline, asyncio.Event()) is False
    assert loop.time() >= deadline - 0.005


async def test_sleep_until_woken_early_clears_the_event() -> None:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    loop.call_soon(wake.set)
    started = loop.time()
    assert await sleep_until(started + 30, wake) is True
    assert loop.time() - started < 5
    assert not wake.is_set()


async def test_sleep_until_already_set() -> None:
    wake = asyncio.Event()
    wake.set()
    loop = asyncio.get_running_loop()
    assert await sleep_until(loop.time() + 30, wake) is True
    assert not wake.is_set()


# --- run_round -------------------------------------------------------------------------------


async def test_run_round_keeps_input_order() -> None:
    async def run_one(n: int) -> int:
        for _ in range(10 - n):  # finish in reverse order
            await asyncio.sleep(0)
        return n * n

    assert await run_round(range(10), run_one) == [n * n for n in range(10)]


@pytest.mark.parametrize("limit", [1, 2, 4, 16])
async def test_run_round_bounds_concurrency(limit: int) -> None:
    active = peak = 0

    async def run_one(n: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(3):
            await asyncio.sleep(0)
        active -= 1
        return n

    assert await run_round(range(12), run_one, limit=limit) == list(range(12))
    assert peak == min(limit, 12)


async def test_one_failing_check_does_not_stop_the_others() -> None:
    async def run_one(name: str) -> str:
        if name == "bad":
            raise RuntimeError("bug in the agent")
        await asyncio.sleep(0)
        return f"{name}:ok"

    def on_error(name: str, exc: Exception) -> str:
        return f"{name}:unknown:{exc}"

    results = await run_round(["a", "bad", "c"], run_one, on_error=on_error)
    assert results == ["a:ok", "bad:unknown:bug in the agent", "c:ok"]
    # Without on_error the failed check is left out, the others still report.
    assert await run_round(["a", "bad", "c"], run_one) == ["a:ok", "c:ok"]


async def test_failing_on_error_is_contained_too() -> None:
    async def run_one(name: str) -> str:
        raise ValueError(name)

    def on_error(name: str, exc: Exception) -> str:
        raise KeyError("worse")

    assert await run_round(["x", "y"], run_one, on_error=on_error) == []


async def test_run_round_edge_cases() -> None:
    async def run_one(n: int) -> int:
        return n

    assert await run_round([], run_one) == []
    with pytest.raises(ValueError):
        await run_round([1], run_one, limit=0)


async def test_cancelling_a_round_cancels_and_awaits_every_run() -> None:
    started: list[int] = []
    cleaned: list[int] = []
    all_started = asyncio.Event()

    async def run_one(n: int) -> int:
        started.append(n)
        if len(started) == 3:
            all_started.set()
        try:
            await asyncio.Event().wait()  # hang
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append(n)
        return n

    task = asyncio.create_task(run_round(range(5), run_one, limit=3))
    await all_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(started) == [0, 1, 2]  # the limit held
    assert sorted(cleaned) == [0, 1, 2]  # every started run finished its cleanup


async def test_round_of_real_scripts_with_a_broken_one(tmp_path: Path) -> None:
    """The daemon's shape: run_script + parse_outcome per script, unknown on agent bugs."""
    for name, body in [("a.sh", "echo 'A OK | a=1'"), ("b.sh", "echo 'B CRIT'; exit 2")]:
        (tmp_path / name).write_text(body + "\n")
    scripts = [tmp_path / "a.sh", tmp_path / "boom", tmp_path / "b.sh"]

    async def run_one(path: Path) -> tuple[str, ParsedOutput]:
        if path.name == "boom":
            raise RuntimeError("simulated agent bug")
        return path.stem, parse_outcome(await run_script(path, timeout=5), timeout=5)

    def on_error(path: Path, exc: Exception) -> tuple[str, ParsedOutput]:
        return path.stem, ParsedOutput("unknown", 3, f"agent error: {exc}")

    results = await run_round(scripts, run_one, limit=2, on_error=on_error)
    assert [(name, r.status) for name, r in results] == [
        ("a", "ok"),
        ("boom", "unknown"),
        ("b", "critical"),
    ]
