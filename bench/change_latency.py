"""change_latency: a check script saved -> its new result received on `device.*`.

A real `reflex-agent join` (hub subprocess, the bundled checks plus `probe.py`, 10 s
interval) and, in this process, a raw subscriber on `device.*` (what the dashboard
subscribes to). Each of 50 edits rewrites `probe.py` to print a new marker; the latency
is from just before the write starts to the arrival of the first `results` message whose
probe output carries that marker. It includes the watcher's debounce (~0.1 s), running
the script with the agent's Python, the publish and the subscribe round trip.

Edits alternate between the two ways editors save: rewriting the file in place, and
writing a temporary file renamed over it. They are 0.3-0.5 s apart (random), so each is
its own change for the debounce, and the agent's regular rounds (every 10 s) keep running
in between, as they would on a host.

Baseline (same run): the probe's own run time through the agent's runner
(`run_script`, median of 20), the part of the latency that is the script itself.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench._harness import (
    BUNDLED_SCRIPTS,
    Context,
    CpuWatch,
    Figure,
    agent_argv,
    hub_process,
    isolated_env,
    median,
    open_log,
    percentile,
    ratio,
    stop_process,
)
from bench._wire import RawSubscriber
from reflex_agent.runner import run_script

NAME = "change_latency"
UNIT = "s (p50)"
GOAL = "p50 <= 0.3 s, p99 <= 1 s"
GOAL_P50 = 0.3
GOAL_P99 = 1.0
EDITS = 50
#: An edit whose result has not arrived by then counts as this latency (a miss).
EDIT_TIMEOUT = 5.0
DEVICE = "bench-change"


def _probe(marker: int) -> str:
    return f'print("OK - edit {marker} | edit={marker};;;0")\n'


class ProbeResults:
    """Arrival time of the first probe result carrying each marker."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.changed = asyncio.Event()

    def on_batch(self, envelopes: list[dict[str, Any]], arrived: float) -> None:
        for envelope in envelopes:
            payload = envelope.get("d")
            if not isinstance(payload, dict) or payload.get("kind") != "results":
                continue
            for result in payload.get("results", []):
                if result.get("test") != "probe":
                    continue
                output = str(result.get("output", ""))
                if output.startswith("OK - edit "):
                    marker = int(output.split()[3])
                    self.arrived.setdefault(marker, arrived)
                    self.changed.set()

    async def wait_for(self, marker: int, within: float) -> float | None:
        try:
            async with asyncio.timeout(within):
                while marker not in self.arrived:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return None
        return self.arrived[marker]


def _save(path: Path, text: str, *, in_place: bool) -> None:
    if in_place:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    temp = path.with_name(f".{path.name}.swp-bench")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


async def run(ctx: Context) -> Figure:
    root = ctx.scratch("change")
    scripts = root / "scripts"
    scripts.mkdir()
    for path in BUNDLED_SCRIPTS.glob("*.py"):
        shutil.copy2(path, scripts / path.name)
    probe = scripts / "probe.py"
    probe.write_text(_probe(0), encoding="utf-8")
    state = root / "state"
    state.mkdir()

    runs = [await run_script(probe, timeout=30.0, cwd=scripts) for _ in range(20)]
    baseline = median([outcome.duration_ms / 1000 for outcome in runs])

    results = ProbeResults()
    rng = random.Random(3)
    latencies: list[float] = []
    misses = 0
    async with (
        hub_process(ctx, "change-hub") as hub,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        subscriber = RawSubscriber(
            http, hub.url, ["device.*"], uuid="bench-dashboard", on_batch=results.on_batch
        )
        subscriber.start()
        config = root / "agent.ini"
        config.write_text(
            f"origin = {hub.origin}\nscripts = {scripts}\nstate_dir = {state}\n"
            f"interval = 10\nname = {DEVICE}\n",
            encoding="utf-8",
        )
        log_path = root / "agent.log"
        with open_log(log_path) as log:
            agent = await asyncio.create_subprocess_exec(
                *agent_argv(),
                "join",
                "--config",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=isolated_env(root / "home"),
            )
        try:
            async with asyncio.timeout(30):
                await subscriber.connected.wait()
            if await results.wait_for(0, within=30) is None:
                raise RuntimeError(f"the agent never published the probe (see {log_path})")
            ctx.log(f"change_latency: {EDITS} edits")
            watch = CpuWatch()
            for marker in range(1, EDITS + 1):
                await asyncio.sleep(rng.uniform(0.3, 0.5))
                saved = time.monotonic()
                _save(probe, _probe(marker), in_place=marker % 2 == 0)
                arrived = await results.wait_for(marker, within=EDIT_TIMEOUT)
                if arrived is None:
                    misses += 1
                    latencies.append(EDIT_TIMEOUT)
                else:
                    latencies.append(arrived - saved)
            load = watch.result()
        finally:
            await subscriber.stop()
            await stop_process(agent, grace=5.0)

    p50 = percentile(latencies, 50)
    p99 = percentile(latencies, 99)
    detail = {
        "p50_s": p50,
        "p99_s": p99,
        "max_s": max(latencies),
        "edits": EDITS,
        "misses": misses,
        "in_place_p50_s": percentile(latencies[1::2], 50),
        "rename_p50_s": percentile(latencies[0::2], 50),
        "other_load_cores": load["other_cores"],
        "baseline": "the probe script's own run time through run_script (median of 20)",
    }
    ok = p50 <= GOAL_P50 and p99 <= GOAL_P99 and misses == 0
    return Figure(NAME, p50, UNIT, GOAL, baseline, ratio(p50, baseline), ok, detail)
