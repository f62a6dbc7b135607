"""agent_cpu: the agent's own CPU time per hour, without its checks' CPU.

Measured on the agent process of the shared agent session (see `bench._agent_session`):
psutil's user + system time of the agent process itself (not `children_*`, which is
where the checks' CPU goes once they are reaped) over the steady-state window, scaled to
an hour. The window is a whole number of rounds and heartbeat periods, so the periodic
work (rounds, publishes, heartbeats) is counted in its true proportion.

Baseline (same run, same window): the CPU time of the checks the agent ran (the reaped
children), per hour. The ratio says what the agent costs relative to the work it
supervises.
"""

from __future__ import annotations

from bench._agent_session import agent_session, per_hour
from bench._harness import Context, Figure, ratio

NAME = "agent_cpu"
UNIT = "s/h"
GOAL = "<= 36 s/h (1% of a core), checks' own CPU excluded"
GOAL_SECONDS = 36.0


async def run(ctx: Context) -> Figure:
    session = await agent_session(ctx)
    value = per_hour(session.cpu_own, session.window_seconds)
    baseline = per_hour(session.cpu_children, session.window_seconds)
    detail = {
        "window_s": session.window_seconds,
        "cpu_in_window_s": session.cpu_own,
        "checks_cpu_in_window_s": session.cpu_children,
        "other_load_cores": session.other_cores,
        "baseline": "CPU of the checks themselves (reaped children) per hour, same window",
    }
    ok = value <= GOAL_SECONDS
    return Figure(NAME, value, UNIT, GOAL, baseline, ratio(value, baseline), ok, detail)
