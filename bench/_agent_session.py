"""One measured run of `reflex-agent join`, shared by agent_rss, agent_cpu and
requests_per_device_hour (they are three views of the same steady state, and measuring it
once keeps `--quick` inside its time budget).

Setup: a hub subprocess for the agent, a second hub for the baseline, the bundled scripts
copied to a scratch directory (the agent writes `received/` next to its scripts), a
config with the 10 s interval and default presence settings, and a HOME/XDG sandbox.

Every 0.25 s the session samples the agent hub's request counters (`GET /_hub/stats`,
which is not counted itself), the agent's CPU times and RSS (psutil), and the baseline
hub's counters. Nothing else talks to the agent's hub, so its counters are the agent's.

The steady-state window: it opens 5 s after the first round's `results` publish (midway
between two rounds, after the join burst), and lasts a whole number of presence heartbeat
periods (1 in quick mode, 4 in a full run; the period is what the agent derives from its
presence timeout, 90 s by default). A window that is a multiple of both the round period
(10 s) and the heartbeat period, and starts away from either, counts each of those
periodic requests exactly, whatever their phase. Subscribe long-poll renewals (every
~280 s) are counted as they fall; a quick window is too short to contain one (about
13 requests/h, ~3 % of the figure), a full window contains one.

The baseline client runs the seed's model against its own hub over the same window: one
publish per test per round (6 every 10 s), with the agent's subscription and presence
settings (the facade with the same `BusSettings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench._harness import (
    BUNDLED_SCRIPTS,
    Context,
    CpuWatch,
    HubProcess,
    agent_argv,
    bytecode_env,
    hub_process,
    hub_stats,
    isolated_env,
    open_log,
    stop_process,
)
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import (
    DEFAULT_CONFIG_CHAN,
    DEFAULT_IGNORE_CHAN,
    DEFAULT_PRESENCE_TIMEOUT,
    LOCAL_PUB_KEY,
    LOCAL_SUB_KEY,
)

CACHE_KEY = "agent_session"
INTERVAL = 10
DEVICE = "bench-agent"
SAMPLE_EVERY = 0.25
#: After the first round's publish, wait this long before opening the window (mid-round).
WINDOW_OFFSET = 5.0
RSS_AT_QUICK = 30.0
RSS_AT_FULL = 60.0


@dataclass
class Sample:
    at: float
    agent_requests: Counter[str]
    seed_requests: Counter[str]
    cpu_own: float
    cpu_children: float
    rss: int


@dataclass
class SessionResult:
    rss_at_seconds: float
    rss: int
    rss_end: int
    rss_peak: int
    bare_rss: int
    imports_rss: int
    window_seconds: float
    heartbeat_interval: float
    cpu_own: float
    cpu_children: float
    agent_requests: Counter[str]
    seed_requests: Counter[str]
    notes: list[str] = field(default_factory=list)
    agent_exit: int | None = None
    agent_stop_seconds: float | None = None
    other_cores: float | None = None


def _copy_scripts(target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(BUNDLED_SCRIPTS.iterdir()):
        if path.is_file():
            shutil.copy2(path, target / path.name)
            count += path.suffix == ".py"
    return count


async def _idle_rss(ctx: Context, code: str, name: str) -> int:
    """RSS of a Python process that ran `code` and then sleeps (a reference point)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"{code}\nimport sys, time\nprint('ready', flush=True)\ntime.sleep(120)",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=bytecode_env(ctx, isolated_env(ctx.scratch(f"{name}-home"))),
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            await proc.stdout.readline()
        await asyncio.sleep(0.5)
        return int(psutil.Process(proc.pid).memory_info().rss)
    finally:
        await stop_process(proc)


def _write_config(path: Path, origin: str, scripts: Path, state: Path) -> Path:
    path.write_text(
        f"origin = {origin}\n"
        f"scripts = {scripts}\n"
        f"state_dir = {state}\n"
        f"interval = {INTERVAL}\n"
        f"name = {DEVICE}\n",
        encoding="utf-8",
    )
    return path


async def _start_agent(
    ctx: Context, config: Path, home: Path, log_path: Path
) -> asyncio.subprocess.Process:
    with open_log(log_path) as log:
        return await asyncio.create_subprocess_exec(
            *agent_argv(),
            "join",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=bytecode_env(ctx, isolated_env(home)),
        )


async def _warm_up(ctx: Context, root: Path, scripts: Path) -> None:
    """One short agent run (through its first round) so the measured run loads every
    module from cached bytecode; see `bytecode_env`."""
    state = ctx.scratch("agent-warmup-state")
    async with (
        hub_process(ctx, "warmup-hub") as hub,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        config = _write_config(root / "warmup.ini", hub.origin, scripts, state)
        agent = await _start_agent(ctx, config, root / "warmup-home", root / "warmup.log")
        try:
            async with asyncio.timeout(60):
                while (await hub_stats(http, hub.url))["requests"].get("publish", 0) < 2:
                    if agent.returncode is not None:
                        raise RuntimeError(f"reflex-agent exited (see {root / 'warmup.log'})")
                    await asyncio.sleep(0.2)
        finally:
            await stop_process(agent, grace=5.0)


class SeedModel:
    """The seed's publishing model: one publish per test per round, same presence."""

    def __init__(self, hub: HubProcess, tests: list[str], presence_timeout: int) -> None:
        self.tests = tests
        self.bus = Bus(
            BusSettings(
                publish_key=LOCAL_PUB_KEY,
                subscribe_key=LOCAL_SUB_KEY,
                user_id="seed-model",
                origin=hub.origin,
                ssl=False,
                presence_timeout=presence_timeout,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.start()
        await self.bus.subscribe([DEFAULT_CONFIG_CHAN, DEFAULT_IGNORE_CHAN])
        self._task = asyncio.create_task(self._rounds())

    async def _rounds(self) -> None:
        due = time.monotonic()
        seq = 0
        while True:
            for test in self.tests:
                seq += 1
                message = {"host": "seed-model", "test": test, "value": 1.0, "seq": seq}
                with contextlib.suppress(Exception):
                    await self.bus.publish("device.seed-model", message)
            due += INTERVAL
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.bus.close()


def _at(samples: list[Sample], moment: float) -> Sample:
    """The first sample taken at or after `moment`."""
    for sample in samples:
        if sample.at >= moment:
            return sample
    return samples[-1]


def _changes_near(samples: list[Sample], kind: str, moment: float, margin: float) -> bool:
    """Did a request of `kind` arrive within `margin` s of `moment` (a window edge)?"""
    near = [s for s in samples if moment - margin <= s.at <= moment + margin]
    if len(near) < 2:
        return False
    return any(
        near[0].agent_requests[kind] != s.agent_requests[kind]
        or near[0].seed_requests[kind] != s.seed_requests[kind]
        for s in near[1:]
    )


async def _measure(ctx: Context) -> SessionResult:
    root = ctx.scratch("agent-session")
    scripts = root / "scripts"
    tests = _copy_scripts(scripts)
    state = root / "state"
    state.mkdir(exist_ok=True)
    heartbeat_interval = BusSettings(
        publish_key=LOCAL_PUB_KEY,
        subscribe_key=LOCAL_SUB_KEY,
        user_id=DEVICE,
        presence_timeout=DEFAULT_PRESENCE_TIMEOUT,
    ).effective_heartbeat_interval
    periods = int(ctx.pick(1, 4))
    window_seconds = periods * heartbeat_interval
    rss_at = ctx.pick(RSS_AT_QUICK, RSS_AT_FULL)

    ctx.log("agent session: warm-up run (bytecode cache), reference processes")
    await _warm_up(ctx, root, scripts)
    bare_rss = await _idle_rss(ctx, "pass", "bare")
    imports_rss = await _idle_rss(ctx, "import reflex_agent.cli, reflex_agent.daemon", "imports")

    async with (
        hub_process(ctx, "agent-hub") as hub,
        hub_process(ctx, "seed-hub") as seed_hub,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        config = _write_config(root / "agent.ini", hub.origin, scripts, state)
        seed = SeedModel(seed_hub, [p.stem for p in sorted(scripts.glob("*.py"))], 120)
        log_path = root / "agent.log"
        ctx.log(
            f"agent session: reflex-agent join with {tests} bundled scripts, {INTERVAL} s "
            f"interval; window {window_seconds:.0f} s ({periods} heartbeat period(s))"
        )
        agent = await _start_agent(ctx, config, root / "home", log_path)
        started = time.monotonic()
        await seed.start()
        samples: list[Sample] = []
        notes: list[str] = []
        try:
            process = psutil.Process(agent.pid)
            first_round: float | None = None
            rss_sample: int | None = None
            window_start: float | None = None
            watch: CpuWatch | None = None
            other_cores: float | None = None
            while True:
                if agent.returncode is not None:
                    raise RuntimeError(
                        f"reflex-agent exited with {agent.returncode} (see {log_path})"
                    )
                agent_stats, seed_stats = await asyncio.gather(
                    hub_stats(http, hub.url), hub_stats(http, seed_hub.url)
                )
                times = process.cpu_times()
                now = time.monotonic()
                sample = Sample(
                    at=now,
                    agent_requests=Counter(agent_stats["requests"]),
                    seed_requests=Counter(seed_stats["requests"]),
                    cpu_own=times.user + times.system,
                    cpu_children=times.children_user + times.children_system,
                    rss=int(process.memory_info().rss),
                )
                samples.append(sample)
                # `state` at join, then round 1's `results`: the second publish.
                if first_round is None and sample.agent_requests["publish"] >= 2:
                    first_round = now
                    window_start = now + WINDOW_OFFSET
                if watch is None and window_start is not None and now >= window_start:
                    watch = CpuWatch()
                if rss_sample is None and now - started >= rss_at:
                    rss_sample = sample.rss
                if window_start is not None and now >= window_start + window_seconds:
                    if other_cores is None and watch is not None:
                        other_cores = watch.result()["other_cores"]
                    if rss_sample is not None:
                        break
                if now - started > window_seconds + 120:
                    raise RuntimeError(f"the agent never published a round (see {log_path})")
                await asyncio.sleep(SAMPLE_EVERY)
        finally:
            await seed.stop()
            stop_started = time.monotonic()
            agent_exit = await stop_process(agent, grace=5.0)
            stop_seconds = time.monotonic() - stop_started

    assert window_start is not None and rss_sample is not None
    first = _at(samples, window_start)
    last = _at(samples, window_start + window_seconds)
    for kind in ("heartbeat", "publish"):
        for edge in (first.at, last.at):
            if _changes_near(samples, kind, edge, 0.5):
                notes.append(f"a {kind} request fell within 0.5 s of a window edge")
    return SessionResult(
        rss_at_seconds=rss_at,
        rss=rss_sample,
        rss_end=samples[-1].rss,
        rss_peak=max(s.rss for s in samples),
        bare_rss=bare_rss,
        imports_rss=imports_rss,
        window_seconds=last.at - first.at,
        heartbeat_interval=heartbeat_interval,
        cpu_own=last.cpu_own - first.cpu_own,
        cpu_children=last.cpu_children - first.cpu_children,
        agent_requests=last.agent_requests - first.agent_requests,
        seed_requests=last.seed_requests - first.seed_requests,
        notes=notes,
        agent_exit=agent_exit,
        agent_stop_seconds=stop_seconds,
        other_cores=other_cores,
    )


async def agent_session(ctx: Context) -> SessionResult:
    """Measure once per child process; the three agent benchmarks each read their part."""
    cached = ctx.cache.get(CACHE_KEY)
    if isinstance(cached, BaseException):
        raise RuntimeError(f"the agent session failed: {cached}")
    if cached is None:
        try:
            cached = await _measure(ctx)
        except Exception as exc:
            ctx.cache[CACHE_KEY] = exc
            raise
        ctx.cache[CACHE_KEY] = cached
    assert isinstance(cached, SessionResult)
    return cached


def per_hour(count: float, seconds: float) -> float:
    return count * 3600.0 / seconds


def as_dict(counter: Counter[str]) -> dict[str, Any]:
    return {key: counter[key] for key in sorted(counter) if counter[key]}
