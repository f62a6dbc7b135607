"""fleet_join: 100 agents join at once; time until all 100 cards are on the dashboard.

The real dashboard (`make_app()`, its own SDK `Bus`, headless) runs against a hub
subprocess with no devices and has finished its start-up backfill. A load generator
subprocess (`bench._loadgen`, mode `join`) then releases 100 simulated agents at once,
each on its own connection doing what `reflex-agent join` does on the wire: set its uuid
metadata, add itself to the membership channel, a presence heartbeat on the command and
script channels, then publish `state` and a `results` round of 6 tests.

Time runs from the release until every one of the 100 devices is a member in the
dashboard's state with all 6 tests, and has a mounted card in the grid. The dashboard
does its real work on the way: a card per membership event, then per new member its
uuid metadata and history fetched (the `load_device` worker).

Baseline (same run, same dashboard): one agent joining alone, timed the same way.
"""

from __future__ import annotations

import time

from bench import _tui
from bench._harness import Context, CpuWatch, Figure, hub_process, loadgen, ratio
from reflex_core.config import DEFAULT_CONFIG_CHAN, DEFAULT_IGNORE_CHAN

NAME = "fleet_join"
UNIT = "s"
GOAL = "<= 5 s (100 agents joining at once)"
GOAL_SECONDS = 5.0
AGENTS = 100
TESTS = 6
WITHIN = 60.0


async def _join(ctx: Context, app: _tui.ReflexApp, url: str, agents: list[str]) -> float:
    spec = {
        "mode": "join",
        "url": url,
        "agents": agents,
        "channel": _tui.MEMBERSHIP_CHANNEL,
        "presence_channels": [DEFAULT_IGNORE_CHAN, DEFAULT_CONFIG_CHAN],
        "tests": TESTS,
    }
    async with loadgen(ctx, spec, f"join-{len(agents)}") as generator:
        released = await generator.go()
        done = await _tui.wait_until(
            lambda: _tui.fleet_complete(app, agents, TESTS),
            within=WITHIN,
            what=f"{len(agents)} cards",
            step=0.01,
        )
        await generator.result(within=WITHIN)
    return done - released


async def run(ctx: Context) -> Figure:
    scripts = ctx.scratch("fleet-join-scripts")
    async with hub_process(ctx, "fleet-join-hub") as hub:
        app = _tui.new_app(hub.origin, scripts)
        async with app.run_test(size=_tui.SIZE):
            await _tui.ready(app, [], TESTS, within=60)
            ctx.log("fleet_join: one agent (baseline)")
            single = await _join(ctx, app, hub.url, ["solo-0000"])
            ctx.log(f"fleet_join: {AGENTS} agents at once")
            started = time.monotonic()
            watch = CpuWatch()
            value = await _join(ctx, app, hub.url, _tui.device_ids(AGENTS, "fleet"))
            load = watch.result()
            members = len(app.fleet.members())
            ctx.log(f"fleet_join: done in {time.monotonic() - started:.1f} s")
    detail = {
        "agents": AGENTS,
        "members_on_dashboard": members,
        "other_load_cores": load["other_cores"],
        "baseline": "one agent joining alone, same dashboard, same measure",
    }
    ok = value <= GOAL_SECONDS
    return Figure(NAME, value, UNIT, GOAL, single, ratio(value, single), ok, detail)
