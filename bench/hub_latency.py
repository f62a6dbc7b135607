"""hub_latency: publish -> delivery on `device.*` at 2,000 publishes/s from 200 connections.

Three processes, as in production, so none waits for another's GIL: the hub
(`python -m reflex_hub --port 0 --memory`), a load generator (`bench._loadgen`: 200
keep-alive connections, 10 publishes/s each, open-loop, each a realistic 6-result
`results` message on its own `device.sim-NNN` channel) and this process, which holds one
raw subscribe long-poll on `device.*` (the dashboard's subscription) and stamps every
delivery. Latency = arrival of the subscribe response carrying a message - the send time
stamped into it just before its publish request (`time.monotonic()`, system-wide on
Linux), so it includes the publisher's request, the hub's fan-out and the long-poll round
trip. The first seconds are warm-up and not counted; a message never delivered counts as
a miss.

Baseline (same run, same processes): the same path at 1 % of the load (20 publishes/s
from 2 connections), i.e. what the hub adds when it is idle. The detail has the CPU share
of each process during the loaded phase (1.0 = one core busy), so a figure can be read as
"the hub ran out of CPU" or not; a full run also measures p99 at 500, 1,000 and 1,500/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import psutil

from bench._harness import (
    Context,
    CpuWatch,
    Figure,
    HubProcess,
    hub_process,
    hub_stats,
    loadgen,
    percentile,
    ratio,
)
from bench._wire import RawSubscriber

NAME = "hub_latency"
UNIT = "ms"
GOAL = "p99 < 50 ms (2,000 publishes/s from 200 connections)"
GOAL_P99_MS = 50.0
RATE = 2000.0
CONNECTIONS = 200
#: Share of the requested rate the load generator must reach for the figure to count.
MIN_RATE_SHARE = 0.95
#: Full runs also measure these lower rates (detail only), to show where the knee is.
KNEE_RATES = (500.0, 1000.0, 1500.0)


class Deliveries:
    """Latency of every stamped message seen by the subscriber, by sequence number."""

    def __init__(self) -> None:
        self.by_seq: dict[int, tuple[float, float]] = {}  # seq -> (sent at, latency s)
        self.expected: int | None = None
        self.complete = asyncio.Event()

    def on_batch(self, envelopes: list[dict[str, Any]], arrived: float) -> None:
        for envelope in envelopes:
            payload = envelope.get("d")
            if isinstance(payload, dict) and "_t" in payload:
                sent = float(payload["_t"])
                self.by_seq[int(payload["_n"])] = (sent, arrived - sent)
        self._check()

    def expect(self, count: int) -> None:
        self.expected = count
        self._check()

    def _check(self) -> None:
        if self.expected is not None and len(self.by_seq) >= self.expected:
            self.complete.set()

    def clear(self) -> None:
        self.by_seq.clear()
        self.expected = None
        self.complete.clear()


async def _phase(
    ctx: Context,
    hub: HubProcess,
    deliveries: Deliveries,
    *,
    name: str,
    connections: int,
    rate: float,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    spec = {
        "mode": "publish",
        "url": hub.url,
        "connections": connections,
        "devices": [f"sim-{index:03d}" for index in range(connections)],
        "rate": rate,
        "duration": warmup + duration,
        "tests": 6,
    }
    hub_process_info = psutil.Process(hub.pid)
    async with loadgen(ctx, spec, name) as generator:
        deliveries.clear()
        hub_cpu = hub_process_info.cpu_times()
        own_cpu = time.process_time()
        watch = CpuWatch()
        await generator.go()
        summary = await generator.result(within=warmup + duration + 60)
        summary["other_cores"] = watch.result()["other_cores"]
        hub_cpu_after = hub_process_info.cpu_times()
        elapsed = summary["elapsed"]
        summary["hub_cpu_share"] = (
            hub_cpu_after.user + hub_cpu_after.system - hub_cpu.user - hub_cpu.system
        ) / elapsed
        summary["subscriber_cpu_share"] = (time.process_time() - own_cpu) / elapsed
    # Messages still in flight when the generator stopped: wait (bounded) for them.
    deliveries.expect(summary["sent"])
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3.0):
            await deliveries.complete.wait()
    counted_from = summary["start"] + warmup
    latencies = [lat for sent, lat in deliveries.by_seq.values() if sent >= counted_from]
    summary["latencies"] = latencies
    summary["lost"] = max(0, summary["sent"] - len(deliveries.by_seq))
    return summary


async def run(ctx: Context) -> Figure:
    deliveries = Deliveries()
    async with (
        hub_process(ctx) as hub,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
    ):
        subscriber = RawSubscriber(
            session, hub.url, ["device.*"], uuid="bench-subscriber", on_batch=deliveries.on_batch
        )
        subscriber.start()
        try:
            async with asyncio.timeout(15):
                await subscriber.connected.wait()
            await hub_stats(session, hub.url, min_long_polls=1, within=10)
            ctx.log("hub_latency: baseline, 20 publishes/s from 2 connections")
            idle = await _phase(
                ctx,
                hub,
                deliveries,
                name="loadgen-idle",
                connections=2,
                rate=20,
                duration=ctx.pick(3, 10),
                warmup=1.0,
            )
            ctx.log(f"hub_latency: {RATE:.0f} publishes/s from {CONNECTIONS} connections")
            knee: dict[str, float] = {}
            if not ctx.quick:
                for rate in KNEE_RATES:
                    ctx.log(f"hub_latency: {rate:.0f} publishes/s (where latency starts to grow)")
                    step = await _phase(
                        ctx,
                        hub,
                        deliveries,
                        name=f"loadgen-{rate:.0f}",
                        connections=CONNECTIONS,
                        rate=rate,
                        duration=6,
                        warmup=1.0,
                    )
                    knee[f"p99_ms_at_{rate:.0f}"] = percentile(step["latencies"], 99) * 1000
            busy = await _phase(
                ctx,
                hub,
                deliveries,
                name="loadgen-busy",
                connections=CONNECTIONS,
                rate=RATE,
                duration=ctx.pick(6, 20),
                warmup=2.0,
            )
        finally:
            await subscriber.stop()

    p99 = percentile(busy["latencies"], 99) * 1000
    p50 = percentile(busy["latencies"], 50) * 1000
    idle_p99 = percentile(idle["latencies"], 99) * 1000
    rate_ok = busy["rate"] >= MIN_RATE_SHARE * RATE
    ok = p99 < GOAL_P99_MS and busy["lost"] == 0 and busy["errors"] == 0 and rate_ok
    detail: dict[str, Any] = {
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(busy["latencies"], default=float("nan")) * 1000,
        "samples": len(busy["latencies"]),
        "publish_rate": busy["rate"],
        "late_sends": busy["late"],
        "lost": busy["lost"],
        "errors": busy["errors"],
        "hub_cpu_share": busy["hub_cpu_share"],
        "loadgen_cpu_share": busy["cpu_share"],
        "subscriber_cpu_share": busy["subscriber_cpu_share"],
        "other_load_cores": busy["other_cores"],
        **knee,
        "baseline_p50_ms": percentile(idle["latencies"], 50) * 1000,
        "baseline": "p99 at 20 publishes/s from 2 connections",
    }
    if not rate_ok:
        detail["note"] = (
            f"the load generator reached {busy['rate']:.0f}/s, below "
            f"{MIN_RATE_SHARE:.0%} of {RATE:.0f}/s: the figure does not prove the goal"
        )
    return Figure(NAME, p99, UNIT, GOAL, idle_p99, ratio(p99, idle_p99), ok, detail)
