"""requests_per_device_hour: HTTP requests the hub receives per agent per hour.

Everything counts: publishes, presence heartbeats, subscribe long-polls, App Context and
file requests. Measured on the hub of the shared agent session (see
`bench._agent_session`), which only the agent talks to: the hub's own counters
(`GET /_hub/stats`, not counted itself) over the steady-state window, scaled to an hour.
6 checks, 10 s interval, default presence timeout (120 s).

Baseline (same run, same window, its own hub): the seed's model, one publish per test per
round (6 every 10 s), with the same subscription and presence settings.

Not in any window: the agent re-lists `config_chan` every 30 minutes (+2 requests/h), and
the join itself (about 8 requests, once per start).
"""

from __future__ import annotations

from bench._agent_session import agent_session, as_dict, per_hour
from bench._harness import Context, Figure, ratio

NAME = "requests_per_device_hour"
UNIT = "requests/h"
GOAL = "<= 450 and ratio to the seed's model <= 0.25"
GOAL_REQUESTS = 450.0
GOAL_RATIO = 0.25


async def run(ctx: Context) -> Figure:
    session = await agent_session(ctx)
    seconds = session.window_seconds
    value = per_hour(sum(session.agent_requests.values()), seconds)
    baseline = per_hour(sum(session.seed_requests.values()), seconds)
    figure_ratio = ratio(value, baseline)
    detail = {
        "window_s": seconds,
        "heartbeat_interval_s": session.heartbeat_interval,
        "agent_by_kind": {
            k: per_hour(v, seconds) for k, v in as_dict(session.agent_requests).items()
        },
        "seed_by_kind": {
            k: per_hour(v, seconds) for k, v in as_dict(session.seed_requests).items()
        },
        "agent_in_window": as_dict(session.agent_requests),
        "agent_exit_code": session.agent_exit,
        "agent_stop_s": session.agent_stop_seconds,
        "baseline": "seed's model: one publish per test per round, same interval and presence",
    }
    if session.notes:
        detail["notes"] = session.notes
    ok = value <= GOAL_REQUESTS and figure_ratio is not None and figure_ratio <= GOAL_RATIO
    return Figure(NAME, value, UNIT, GOAL, baseline, figure_ratio, ok, detail)
