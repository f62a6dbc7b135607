"""`python -m bench [--quick] [--only NAMES] [--strict] [--markdown]`: run the suite.

Run from the repository root with the project installed (`pip install -e '.[test]'`; the
suite needs psutil, from the test extra). Every benchmark prints one JSON line on stdout
as soon as it has its figure; a table follows at the end. Progress goes to stderr.

Each group of benchmarks runs in a child process of its own (`bench._run`), in a session
of its own, with a scratch directory the suite removes afterwards: a benchmark that hangs
is stopped at its time limit with one signal to its process group, and nothing it started
outlives it. After each group the suite also looks for any process still running from
the scratch directory and kills it (and says so).

Schedule: the agent session (agent_rss, agent_cpu, requests_per_device_hour) mostly waits
for the agent's rounds (its figures are memory, CPU seconds and request counts, which
other load hardly moves), so tui_rss (a memory figure) runs beside it. In `--quick` mode
change_latency and agent_overhead follow tui_rss beside it too, so the suite fits in 3
minutes on 2 cores; a full run keeps every timing benchmark alone.

Exit status: 0 when every benchmark produced its figure, 1 when one could not (crash or
time limit); with `--strict`, also 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench._harness import ENV_TMP, REPO, Figure

#: name -> (unit, goal), for reporting a benchmark that produced nothing.
BENCHMARKS: dict[str, tuple[str, str]] = {}
ORDER = (
    "hub_latency",
    "agent_overhead",
    "agent_rss",
    "agent_cpu",
    "requests_per_device_hour",
    "change_latency",
    "tui_ingest",
    "tui_rss",
    "fleet_join",
)
AGENT_SESSION = ("agent_rss", "agent_cpu", "requests_per_device_hour")
QUICK_BUDGET = 180.0
#: Other processes using this much CPU (cores) during a timing make it worth a footnote.
BUSY_CORES = 0.5
FULL_BUDGET = 900.0


@dataclass(frozen=True)
class Group:
    """Benchmarks run together in one child process, with a time limit for all of them."""

    names: tuple[str, ...]
    quick_limit: float
    full_limit: float


GROUPS = {
    "hub_latency": Group(("hub_latency",), 90, 180),
    "agent_overhead": Group(("agent_overhead",), 90, 180),
    "agent_session": Group(AGENT_SESSION, 180, 600),
    "change_latency": Group(("change_latency",), 120, 180),
    "tui_ingest": Group(("tui_ingest",), 150, 300),
    "tui_rss": Group(("tui_rss",), 150, 500),
    "fleet_join": Group(("fleet_join",), 90, 120),
}


def schedule(quick: bool) -> list[list[list[str]]]:
    """Stages run one after another; each stage holds lanes that run side by side, each
    lane a list of groups run in order."""
    beside_session = ["tui_rss", "change_latency", "agent_overhead"] if quick else ["tui_rss"]
    stages = [
        [["hub_latency"]],
        [["agent_session"], beside_session],
    ]
    if not quick:
        stages += [[["change_latency"]], [["agent_overhead"]]]
    stages += [[["tui_ingest"]], [["fleet_join"]]]
    return stages


def _load_metadata() -> None:
    import importlib

    for name in ORDER:
        module = importlib.import_module(f"bench.{name}")
        BENCHMARKS[name] = (module.UNIT, module.GOAL)


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _kill_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _strays(marker: str) -> list[str]:
    """Kill any process whose command line mentions the scratch dir; return what it was."""
    try:
        import psutil
    except ImportError:
        return []
    found: list[str] = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if proc.info["pid"] != me and marker in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline[:120]}")
            with contextlib.suppress(psutil.Error):
                proc.kill()
    return found


async def run_group(group: Group, quick: bool, root: Path, emit: list[Figure]) -> None:
    limit = group.quick_limit if quick else group.full_limit
    scratch = Path(tempfile.mkdtemp(prefix=f"{group.names[0]}-", dir=root))
    argv = [sys.executable, "-m", "bench._run", *(["--quick"] if quick else []), *group.names]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, ENV_TMP: str(scratch)},
        cwd=str(REPO),
        start_new_session=True,
    )
    seen: set[str] = set()
    error: str | None = None
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(limit):
            while line := await proc.stdout.readline():
                try:
                    figure = Figure.from_dict(json.loads(line))
                except (ValueError, KeyError):
                    print(line.decode(errors="replace").rstrip(), file=sys.stderr)
                    continue
                seen.add(figure.name)
                emit.append(figure)
                print(figure.to_json(), flush=True)
            await proc.wait()
        if proc.returncode:
            error = f"benchmark process exited with {proc.returncode}"
    except TimeoutError:
        error = f"stopped at its time limit ({limit:.0f} s)"
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                _kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        _kill_group(proc.pid, signal.SIGKILL)  # anything left in its group
        strays = _strays(str(scratch))
        if strays:
            _say(f"killed processes left behind by {'/'.join(group.names)}: {strays}")
        shutil.rmtree(scratch, ignore_errors=True)
    for name in group.names:
        if name not in seen:
            unit, goal = BENCHMARKS[name]
            figure = Figure.failed(name, unit, goal, error or "produced no figure")
            emit.append(figure)
            print(figure.to_json(), flush=True)


async def run_lane(groups: list[str], quick: bool, root: Path, emit: list[Figure]) -> None:
    for key in groups:
        await run_group(GROUPS[key], quick, root, emit)


def _other_load(figure: Figure) -> float:
    """The most CPU (cores) other processes used during any timed part of a benchmark."""
    loads = [
        value
        for key, value in figure.detail.items()
        if key.startswith("other_load_cores") and isinstance(value, int | float)
    ]
    return max(loads, default=0.0)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(figures: list[Figure], *, markdown: bool = False) -> str:
    header = ("name", "value", "unit", "goal", "baseline", "ratio", "ok")
    rows = [header] + [
        (f.name, _fmt(f.value), f.unit, f.goal, _fmt(f.baseline), _fmt(f.ratio), _fmt(f.ok))
        for f in figures
    ]
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + "|".join(" --- " for _ in header) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPU(s), {model}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


async def main_async(args: argparse.Namespace) -> int:
    wanted = set(args.only.split(",")) if args.only else set(ORDER)
    unknown = wanted - set(ORDER)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = time.monotonic()
    mode = "quick" if args.quick else "full"
    _say(f"{mode} run on {machine()}")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="reflex-bench-") as tmp:
        root = Path(tmp)
        for stage in schedule(args.quick):
            lanes = []
            for lane in stage:
                keep = [key for key in lane if wanted & set(GROUPS[key].names)]
                if keep:
                    lanes.append(keep)
            await asyncio.gather(*(run_lane(lane, args.quick, root, figures) for lane in lanes))
    elapsed = time.monotonic() - started
    ordered = sorted((f for f in figures if f.name in wanted), key=lambda f: ORDER.index(f.name))
    print()
    print(table(ordered, markdown=args.markdown))
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    print(f"\n{mode} run: {elapsed:.0f} s (budget {budget:.0f} s) on {machine()}")
    busy = [f"{f.name} ({_other_load(f):.1f})" for f in ordered if _other_load(f) >= BUSY_CORES]
    if busy:
        print(
            "measured while other processes kept the machine busy (cores they used): "
            + ", ".join(busy)
        )
    failed = [f.name for f in ordered if f.value is None]
    missed = [f.name for f in ordered if f.value is not None and not f.ok]
    if failed:
        print(f"no figure: {', '.join(failed)}")
    if missed:
        print(f"goal missed: {', '.join(missed)}")
    if failed:
        return 1
    return 1 if (args.strict and missed) else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Reflex Observer benchmark suite (issue 7)."
    )
    parser.add_argument("--quick", action="store_true", help="the 3-minute version")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated benchmark names")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and goals")
    parser.add_argument("--markdown", action="store_true", help="print the final table in Markdown")
    args = parser.parse_args()
    try:
        import psutil  # noqa: F401 - checked here so a missing extra is one clear line
    except ImportError:
        print("the benchmarks need psutil: pip install -e '.[test]'", file=sys.stderr)
        raise SystemExit(2) from None
    _load_metadata()
    if args.list:
        for name in ORDER:
            unit, goal = BENCHMARKS[name]
            print(f"{name:26s} {goal} [{unit}]")
        return
    try:
        raise SystemExit(asyncio.run(main_async(args)))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
