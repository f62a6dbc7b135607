"""tui_rss: resident memory of the dashboard holding 1 h of history for 500 x 10 tests.

The dashboard runs in a subprocess of its own (`bench._tui_rss_child`): the real app,
headless, connected to a hub subprocess like `reflex-tui`, with 500 registered devices of
10 tests each and 360 points per test (one hour at 10 s), all 500 cards mounted. Once it
has settled and collected garbage it says so, and this process reads its RSS (psutil)
from outside. A first, unmeasured run fills a private bytecode cache, so the measured
runs load compiled modules as an installed dashboard does (`bytecode_env`).

A full run feeds the history through the dashboard's own backfill path (`Ingest.history`
on stored `results` messages, as after a restart); `--quick` builds the same retained
state directly, which skips parsing 180,000 messages (~90 s of CPU). The detail says
which.

Baseline (same run): the same dashboard, same 500 devices and cards, with one round each
instead of an hour: the figure minus the baseline is what the history costs.

1 MB = 10^6 bytes here (the stricter reading of the goal).
"""

from __future__ import annotations

import asyncio
import json
import sys

import psutil

from bench._harness import (
    REPO,
    Context,
    Figure,
    bytecode_env,
    hub_process,
    isolated_env,
    open_log,
    ratio,
    stop_process,
)

NAME = "tui_rss"
UNIT = "MB"
GOAL = "<= 150 MB (1 h of history, 500 devices x 10 tests)"
GOAL_MB = 150.0
MB = 1_000_000


async def _dashboard_rss(
    ctx: Context, origin: str, history: str, feed: str, name: str | None = None
) -> int:
    name = name or history
    scripts = ctx.scratch(f"tui-rss-{name}")
    log_path = ctx.tmp / f"tui-rss-{name}.log"
    with open_log(log_path) as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._tui_rss_child",
            origin,
            str(scripts),
            history,
            feed,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=str(REPO),
            env=bytecode_env(ctx, isolated_env(ctx.scratch(f"tui-rss-{name}-home"))),
        )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        async with asyncio.timeout(300):
            line = await proc.stdout.readline()
        if not json.loads(line or b"{}").get("ready"):
            raise RuntimeError(f"the dashboard child failed (see {log_path})")
        rss = int(psutil.Process(proc.pid).memory_info().rss)
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        return rss
    finally:
        await stop_process(proc)


async def run(ctx: Context) -> Figure:
    feed = "state" if ctx.quick else "ingest"
    async with hub_process(ctx, "tui-rss-hub") as hub:
        ctx.log("tui_rss: warm-up run (bytecode cache)")
        await _dashboard_rss(ctx, hub.origin, "round", "ingest", name="warmup")
        ctx.log("tui_rss: dashboard with one round per device (baseline)")
        baseline = await _dashboard_rss(ctx, hub.origin, "round", "ingest") / MB
        ctx.log(f"tui_rss: dashboard with 1 h of history ({feed} feed)")
        value = await _dashboard_rss(ctx, hub.origin, "hour", feed) / MB
    detail = {
        "history_cost_mb": value - baseline,
        "feed": feed,
        "points_per_test": 360,
        "baseline": "same dashboard, same 500 devices and cards, one round each",
    }
    return Figure(
        NAME, value, UNIT, GOAL, baseline, ratio(value, baseline), value <= GOAL_MB, detail
    )
