"""Misbehaving checks do not disturb the others (issue 7, Reliability, third item).

Why: check scripts are written by operators and received from the network; one that hangs,
floods its output or leaves a process behind is a matter of time. The agent must still run
every other check on its schedule (measured here from the results' own timestamps), report
the bad ones as UNKNOWN, and leave no process behind.
"""

from __future__ import annotations

import signal
import statistics
from pathlib import Path

import psutil
import pytest

from reflex_core.protocol import ResultsMessage, Status
from reflex_hub import HubHandle
from tests.agent.agent_harness import observing

from .support import AgentProcess, wait_until

pytestmark = pytest.mark.timeout(60)

INTERVAL = 1
CHECK_TIMEOUT = 2.0
#: Every spacing between two consecutive results of a well-behaved check must be within
#: this of the interval. The schedule is drift-corrected, so spacing only varies by the
#: jitter of starting a process (normally ~10-50 ms); 0.35 s leaves room for a loaded
#: 2-core CI box while still catching a missed or delayed round (>= 1 s off).
SPACING_TOLERANCE = 0.35
SPACINGS = 6
#: Unusual sleep durations identify the processes of this test system-wide (an orphan is
#: re-parented to init, so it is no longer below the agent).
HANG_MARK = "3016"
LEAK_MARK = "3017"

SCRIPTS = {
    "ok.sh": "echo 'OK | v=1'\n",
    "tick.sh": "echo 'TICK OK | t=2'\n",
    "hang.sh": f"sleep {HANG_MARK}\n",
    "flood.sh": "exec yes 'flooding the agent with output, forever'\n",
    "leak.sh": f"sleep {LEAK_MARK} &\necho 'LEAK OK | l=3'\n",
}


def sleeps(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == ["sleep", mark]:
            found.append(proc)
    return found


def result_times(messages: list[object], test: str) -> list[float]:
    return [
        r.ts for m in messages if isinstance(m, ResultsMessage) for r in m.results if r.test == test
    ]


async def test_hang_flood_and_leak_do_not_delay_other_checks(
    tmp_path: Path, hub: HubHandle
) -> None:
    agent = AgentProcess(
        tmp_path, "rel-bad", hub.origin, interval=INTERVAL, timeout=CHECK_TIMEOUT, scripts=SCRIPTS
    )
    async with observing(hub.origin, agent.id) as observer:
        await agent.start()
        try:
            # Wait for the faults to have happened (one timeout each; they recur every ~3 s),
            # then measure SPACINGS more rounds of the good checks.
            def timed_out(test: str) -> int:
                return sum(
                    1
                    for m in observer.messages
                    if isinstance(m, ResultsMessage)
                    for r in m.results
                    if r.test == test and "timed out" in r.output
                )

            await wait_until(
                lambda: timed_out("hang") >= 1 and timed_out("flood") >= 1,
                within=20,
                what="hang and flood timed out",
            )
            start = len(result_times(observer.messages, "ok"))
            leaks_seen: list[int] = []

            def measured() -> bool:
                leaks_seen.append(len(sleeps(LEAK_MARK)))
                return len(result_times(observer.messages, "ok")) >= start + SPACINGS + 1

            await wait_until(measured, within=SPACINGS * INTERVAL + 10, what="more rounds")
            rss_mb = psutil.Process(agent.pid).memory_info().rss / 2**20
            descendants = agent.descendants()
            await agent.signal_and_wait(signal.SIGTERM)
        finally:
            await agent.close()

    for test in ("ok", "tick", "leak"):
        times = result_times(observer.messages, test)[start : start + SPACINGS + 1]
        spacings = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(spacings) == SPACINGS, (test, times)
        worst = max(abs(s - INTERVAL) for s in spacings)
        print(
            f"{test}: spacing mean {statistics.mean(spacings):.3f}s, worst deviation {worst:.3f}s"
        )
        assert worst <= SPACING_TOLERANCE, (test, spacings)

    # The faults overlapped the measured window (they were not just before it).
    window = result_times(observer.messages, "ok")[start : start + SPACINGS + 1]
    for test in ("hang", "flood"):
        during = [t for t in result_times(observer.messages, test) if window[0] < t < window[-1]]
        assert during, f"{test} did not time out during the measured window"

    bad = [
        r
        for m in observer.messages
        if isinstance(m, ResultsMessage)
        for r in m.results
        if r.test in ("hang", "flood")
    ]
    assert bad and all(r.status is Status.UNKNOWN for r in bad)
    assert all(f"timed out after {CHECK_TIMEOUT:g} s" in r.output for r in bad), bad[0].output
    flood = [r for r in bad if r.test == "flood"]
    assert all(len(r.output) + len(r.long_output or "") <= 70_000 for r in flood)
    # The leaked child dies with its script's run: at most the one of a run in progress.
    assert max(leaks_seen) <= 1, leaks_seen
    print(f"agent RSS under the flood: {rss_mb:.1f} MB; leaked sleeps sampled {max(leaks_seen)}")
    assert rss_mb < 100
    # Nothing of the agent's survives it: not the hanging check, not a leaked child.
    gone, alive = psutil.wait_procs(descendants, timeout=3)
    assert not alive, alive
    await wait_until(
        lambda: not sleeps(LEAK_MARK) and not sleeps(HANG_MARK),
        within=3,
        what="no leaked or hanging sleep left",
    )
