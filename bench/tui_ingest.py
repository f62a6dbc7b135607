"""tui_ingest: results/s the dashboard processes (500 devices x 10 tests through the hub),
and key-to-repaint p99 under that load.

Processes: a hub subprocess; a load generator subprocess (`bench._loadgen`, 25
keep-alive connections) publishing `results` messages of 10 results for 500 simulated
devices round-robin; and this process running the real dashboard (`make_app()` with its
own SDK `Bus`, headless via `App.run_test()`), which subscribes to `device.*` exactly as
`reflex-tui` does. The 500 devices are registered first (uuid metadata, membership, one
`state` and one `results` each), so the dashboard starts with 500 full cards.

"Processed" = applied to the dashboard's state by its ingest path (`Ingest.applied`,
which counts device messages after parsing and attribution; x 10 results each). Repaints
stay throttled at ~10/s whatever the rate, so ingest is the part that scales with load.

1. Capacity: 10,000 results/s offered (5x the goal, more than this 2-core machine can
   carry with hub and generator on it too); the figure is everything published divided by
   the time from the first publish until the dashboard had applied the last one, i.e. its
   throughput including catching up with the backlog.
2. Keys under load: 2,000 results/s offered (the goal's load); meanwhile a key (down/up,
   moving the cursor between tests of the selected card) every 0.15-0.3 s; latency from
   the key event entering the app to the first rendered frame showing the moved cursor.

Baseline (same run): the ingest path alone (`Ingest.message()` on a `Fleet`, no Textual,
no network) fed pre-built events as fast as it goes, i.e. the state layer's ceiling.
"""

from __future__ import annotations

import random
import time

import aiohttp

from bench import _tui
from bench._harness import Context, CpuWatch, Figure, hub_process, loadgen, percentile, ratio
from bench._payloads import results_payload
from reflex_core.events import ChannelMember, Message
from reflex_tui.ingest import Ingest
from reflex_tui.state import Fleet

NAME = "tui_ingest"
UNIT = "results/s"
GOAL = ">= 2,000 results/s and key-to-repaint p99 < 100 ms (500 devices x 10 tests)"
GOAL_RATE = 2000.0
GOAL_KEY_P99_MS = 100.0
DEVICES = 500
TESTS = 10
CONNECTIONS = 25
CAPACITY_RATE = 10000.0
#: Phase 2 must apply at least this share of what was offered (else it fell behind).
KEEP_UP_SHARE = 0.95


def ingest_ceiling(devices: list[str], messages: int) -> float:
    """Results/s of the bare ingest path on pre-built events (no Textual, no network)."""
    fleet = Fleet()
    ingest = Ingest(fleet, membership_channel=_tui.MEMBERSHIP_CHANNEL, ignore_chan="ignore")
    ingest.members(ChannelMember(uuid=ident, name=f"{ident}.bench") for ident in devices)
    rng = random.Random(9)
    events = [
        Message(
            channel=f"device.{ident}",
            subscription="device.*",
            publisher=ident,
            timetoken=16_000_000_000_000_000 + index,
            payload=results_payload(ident, index + 2, TESTS, rng),
        )
        for index, ident in zip(
            range(messages), devices * (messages // len(devices) + 1), strict=False
        )
    ]
    started = time.perf_counter()
    for event in events:
        ingest.message(event)
    elapsed = time.perf_counter() - started
    return messages * TESTS / elapsed


async def run(ctx: Context) -> Figure:
    devices = _tui.device_ids(DEVICES)
    ctx.log("tui_ingest: ingest ceiling (state layer alone)")
    baseline = ingest_ceiling(devices, 5000)
    scripts = ctx.scratch("tui-ingest-scripts")
    rng = random.Random(13)
    async with (
        hub_process(ctx, "tui-ingest-hub") as hub,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        ctx.log(f"tui_ingest: registering {DEVICES} devices")
        await _tui.register_devices(http, hub.url, devices, tests=TESTS)
        app = _tui.new_app(hub.origin, scripts)
        async with app.run_test(size=_tui.SIZE):
            await _tui.ready(app, devices, TESTS, within=120)
            controller = app.controller
            assert controller is not None
            ingest = controller.ingest
            probe = _tui.KeyProbe(app)
            await probe.run(10, (0.05, 0.1), rng)  # warm-up: first renders, cursor placed
            probe.samples.clear()
            await probe.run(20, (0.1, 0.2), rng)
            idle_keys = list(probe.samples)
            probe.samples.clear()

            capacity_seconds = ctx.pick(6, 15)
            ctx.log(f"tui_ingest: capacity, {CAPACITY_RATE:.0f} results/s offered")
            spec = {
                "mode": "publish",
                "url": hub.url,
                "connections": CONNECTIONS,
                "devices": devices,
                "rate": CAPACITY_RATE / TESTS,
                "duration": capacity_seconds,
                "tests": TESTS,
            }
            async with loadgen(ctx, spec, "tui-load-capacity") as generator:
                before = ingest.applied
                capacity_watch = CpuWatch()
                await generator.go()
                capacity = await generator.result(within=capacity_seconds + 60)
                capacity_load = capacity_watch.result()
            applied_during = ingest.applied - before
            drained_at = await _tui.wait_until(
                lambda: ingest.applied - before >= capacity["sent"],
                within=120,
                what="the dashboard to apply everything that was published",
            )
            load_end = capacity["start"] + capacity["elapsed"]
            backlog_seconds = max(0.0, drained_at - load_end)
            capacity_rate = capacity["sent"] * TESTS / (drained_at - capacity["start"])
            during_rate = applied_during * TESTS / capacity["elapsed"]

            keyed_seconds = ctx.pick(8, 30)
            ctx.log(f"tui_ingest: keys under {GOAL_RATE:.0f} results/s")
            spec.update(rate=GOAL_RATE / TESTS, duration=keyed_seconds)
            async with loadgen(ctx, spec, "tui-load-keys") as generator:
                before = ingest.applied
                watch = CpuWatch()
                await generator.go()
                keys = int(keyed_seconds / 0.25) - 2
                await probe.run(keys, (0.15, 0.3), rng)
                loaded = await generator.result(within=keyed_seconds + 60)
                load = watch.result()
            keyed_rate = (ingest.applied - before) * TESTS / loaded["elapsed"]
            problems = sum(1 for d in app.fleet.devices.values() if d.problem or d.spoof)
            repaints = app.repaints

    value = capacity_rate
    key_p99 = percentile(probe.samples, 99) * 1000
    kept_up = keyed_rate >= KEEP_UP_SHARE * GOAL_RATE
    detail = {
        "key_p99_ms": key_p99,
        "key_p50_ms": percentile(probe.samples, 50) * 1000,
        "keys": len(probe.samples),
        "key_timeouts": probe.timeouts,
        "idle_key_p99_ms": percentile(idle_keys, 99) * 1000,
        "offered_capacity_rate": capacity["rate"] * TESTS,
        "applied_while_publishing": during_rate,
        "backlog_drain_s": backlog_seconds,
        "offered_key_phase_rate": loaded["rate"] * TESTS,
        "applied_key_phase_rate": keyed_rate,
        "messages_per_s": value / TESTS,
        "malformed_or_spoofed_devices": problems,
        "other_load_cores_capacity": capacity_load["other_cores"],
        "other_load_cores_keys": load["other_cores"],
        "repaints": repaints,
        "baseline": "ingest path alone (Ingest.message on pre-built events), results/s",
    }
    ok = (
        value >= GOAL_RATE
        and key_p99 < GOAL_KEY_P99_MS
        and kept_up
        and problems == 0
        and probe.timeouts == 0
    )
    return Figure(NAME, value, UNIT, GOAL, baseline, ratio(value, baseline), ok, detail)
