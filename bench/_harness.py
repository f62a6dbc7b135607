"""What every benchmark shares: the figure format, statistics, and the processes it starts.

Why one harness: each benchmark must print its JSON line in exactly one format, compute
percentiles one way, and, above all, stop every process it started (hub, agent, load
generator) even when it fails half-way. Child processes inherit the benchmark's process
group (the suite starts each benchmark in a session of its own), so the suite can always
take the whole tree down with one signal if a benchmark overruns its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
BUNDLED_SCRIPTS = REPO / "scripts"

#: Where the suite tells a benchmark child its scratch directory is (the suite removes it).
ENV_TMP = "REFLEX_BENCH_TMP"


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One benchmark's result; `to_json()` is the line the issue asks for.

    The seven required keys come first; `detail` carries secondary figures (p50 next to
    a p99, counts, the measuring window) so a reader can check how the value was made.
    """

    name: str
    value: float | None
    unit: str
    goal: str
    baseline: float | None
    ratio: float | None
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _clean(self.value),
            "unit": self.unit,
            "goal": self.goal,
            "baseline": _clean(self.baseline),
            "ratio": _clean(self.ratio),
            "ok": self.ok,
            "detail": {key: _clean(value) for key, value in self.detail.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        return cls(
            name=str(data["name"]),
            value=data.get("value"),
            unit=str(data.get("unit", "")),
            goal=str(data.get("goal", "")),
            baseline=data.get("baseline"),
            ratio=data.get("ratio"),
            ok=bool(data.get("ok")),
            detail=dict(data.get("detail") or {}),
        )

    @classmethod
    def failed(cls, name: str, unit: str, goal: str, error: str) -> Figure:
        """A benchmark that could not produce its figure: reported, never silently missing."""
        return cls(name, None, unit, goal, None, None, False, {"error": error})


def _clean(value: Any) -> Any:
    """Round floats for a readable line; NaN/inf are not JSON, so they become null."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.4g}") if abs(value) < 1e15 else value
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); `q` in 0..100."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50.0)


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """What a benchmark gets: the mode, a scratch directory, and a cache shared with the
    benchmarks that run in the same child process (the agent session is measured once)."""

    quick: bool
    tmp: Path
    cache: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def pick(self, quick: float, full: float) -> float:
        return quick if self.quick else full

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a product process that must not read or write the real user dirs
    (config, state, hub data) nor pick up a `REFLEX_*` override from the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("REFLEX_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def bytecode_env(ctx: Context, env: dict[str, str]) -> dict[str, str]:
    """`env` with bytecode cached in the scratch directory (`PYTHONPYCACHEPREFIX`).

    A memory figure must be taken from a process that loads compiled bytecode, as an
    installed program does: a module compiled at import leaves megabytes of compiler
    garbage in the heap (the agent measured 6.6 MB higher that way). This sandbox sets
    PYTHONDONTWRITEBYTECODE and the repository may hold no `.pyc` at all, so memory
    benchmarks run their program once to fill a private cache (nothing is written outside
    the scratch directory), then measure a second run that reads it.
    """
    result = {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"}
    result["PYTHONPYCACHEPREFIX"] = str(ctx.scratch("pycache"))
    return result


# --------------------------------------------------------------------------- processes


def open_log(path: Path) -> IO[bytes]:
    """A log file for a child's output (a local file: opening it does not block)."""
    return open(path, "ab")


async def stop_process(proc: asyncio.subprocess.Process, *, grace: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL after `grace`; always reaps. Returns the exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return proc.returncode


def agent_argv() -> list[str]:
    """How to start `reflex-agent`: the installed console script, else the same entry
    point through this interpreter."""
    script = Path(sys.executable).with_name("reflex-agent")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from reflex_agent.cli import main; sys.exit(main())"]


@dataclass
class HubProcess:
    """A `reflex-hub --port 0 --memory` subprocess (its own GIL, as in production)."""

    proc: asyncio.subprocess.Process
    url: str
    log_path: Path

    @property
    def origin(self) -> str:
        return self.url.removeprefix("http://")

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.asynccontextmanager
async def hub_process(ctx: Context, name: str = "hub") -> AsyncIterator[HubProcess]:
    """Start a hub subprocess, wait for its `listening` line, stop it on exit."""
    log_path = ctx.tmp / f"{name}.log"
    with open_log(log_path) as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reflex_hub",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--memory",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=isolated_env(ctx.scratch(f"{name}-home")),
        )
    try:
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                line = (await proc.stdout.readline()).decode().strip()
        except TimeoutError:
            raise RuntimeError(f"{name} did not start within 30 s (see {log_path})") from None
        prefix = "reflex-hub listening on "
        if not line.startswith(prefix):
            raise RuntimeError(f"{name} did not start: {line!r} (see {log_path})")
        yield HubProcess(proc, line.removeprefix(prefix), log_path)
    finally:
        await stop_process(proc)


@dataclass
class LoadGen:
    """A `python -m bench._loadgen` subprocess: publishers in a process of their own, so
    they share a GIL neither with the hub nor with whoever measures the deliveries."""

    proc: asyncio.subprocess.Process

    async def go(self) -> float:
        """Start the load; returns the monotonic time it was released."""
        assert self.proc.stdin is not None
        released = time.monotonic()
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        return released

    async def result(self, within: float) -> dict[str, Any]:
        """The generator's summary line (it exits after printing it)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            line = await self.proc.stdout.readline()
            await self.proc.wait()
        if not line:
            raise RuntimeError(f"load generator exited with {self.proc.returncode} and no summary")
        data: dict[str, Any] = json.loads(line)
        return data


@contextlib.asynccontextmanager
async def loadgen(ctx: Context, spec: Mapping[str, Any], name: str) -> AsyncIterator[LoadGen]:
    """Start a load generator with `spec`; it connects, prints `ready` and waits for `go`."""
    log_path = ctx.tmp / f"{name}.log"
    with open_log(log_path) as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._loadgen",
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=str(REPO),
        )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if json.loads(line or b"{}").get("ready") is not True:
            raise RuntimeError(f"load generator {name} failed to start (see {log_path})")
        yield LoadGen(proc)
    finally:
        await stop_process(proc)


# --------------------------------------------------------------------------- hub statistics


async def hub_stats(
    session: aiohttp.ClientSession, url: str, *, min_long_polls: int = 0, within: float = 0.0
) -> dict[str, Any]:
    """`GET /_hub/stats`: request counts by kind (not counted itself) and held long-polls."""
    params = {"min_long_polls": str(min_long_polls), "within": str(within)} if within else None
    async with session.get(f"{url}/_hub/stats", params=params) as response:
        response.raise_for_status()
        data: dict[str, Any] = await response.json(content_type=None)
        return data


# --------------------------------------------------------------------------- machine load


def _tree_cpu() -> float:
    """CPU seconds used by this process and everything it started (reaped or running)."""
    import psutil

    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def _busy_cpu() -> float:
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


class CpuWatch:
    """How much CPU the rest of the machine used while a benchmark measured.

    This is a shared 2-core machine: other people's test runs compete with the processes
    a timing benchmark starts. `other_cores` (busy CPU of the whole machine minus what this
    benchmark's own process tree used, in cores) goes into the detail of every timing
    figure, so a bad figure taken on a busy machine can be told from a bad product.
    """

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._busy = _busy_cpu()
        self._own = _tree_cpu()

    def result(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        busy = (_busy_cpu() - self._busy) / elapsed
        own = (_tree_cpu() - self._own) / elapsed
        return {"own_cores": own, "other_cores": max(0.0, busy - own)}
