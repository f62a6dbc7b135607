"""agent_rss: resident memory of `reflex-agent join` with the bundled scripts.

Measured on the agent process of the shared agent session (see `bench._agent_session`):
the 6 bundled checks, a 10 s interval, against a hub subprocess; RSS (psutil) 60 s after
start (30 s in quick mode). The scripts run as child processes and are not counted.

Baseline (same run): RSS of a bare interpreter (`python -c pass`, then idle) of the same
Python, i.e. the part of the figure no agent written in Python can avoid. The detail adds
an interpreter that only imports the agent's modules, which splits the figure into
interpreter, imported code and what the running agent holds.

1 MB = 10^6 bytes here (the stricter reading of the goal); the detail gives MiB too.
Both processes load cached bytecode, as an installed agent does (`bytecode_env`).
"""

from __future__ import annotations

from bench._agent_session import agent_session
from bench._harness import Context, Figure, ratio

NAME = "agent_rss"
UNIT = "MB"
GOAL = "<= 40 MB"
GOAL_MB = 40.0
MB = 1_000_000


async def run(ctx: Context) -> Figure:
    session = await agent_session(ctx)
    value = session.rss / MB
    baseline = session.bare_rss / MB
    detail = {
        "measured_at_s": session.rss_at_seconds,
        "value_mib": session.rss / 2**20,
        "imports_only_mb": session.imports_rss / MB,
        "at_end_mb": session.rss_end / MB,
        "peak_sampled_mb": session.rss_peak / MB,
        "baseline": "RSS of a bare `python -c pass` (same interpreter), idle",
    }
    return Figure(
        NAME, value, UNIT, GOAL, baseline, ratio(value, baseline), value <= GOAL_MB, detail
    )
