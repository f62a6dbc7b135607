"""agent_overhead: what the agent's runner adds to running a check, per run.

200 runs of a trivial check (`/bin/sh trivial.sh`, which echoes one plugin line) through
`reflex_agent.runner.run_script` against 200 runs of the same command with bare
`asyncio.create_subprocess_exec` + `communicate()` (stdout/stderr piped, stdin from
/dev/null): the least any async agent must do. A shell script rather than a Python one
because the interpreter's own ~20 ms start-up would hide the runner's overhead.

Runs alternate (runner, bare, bare, runner, ...) after a warm-up, so a burst of load from
another process on this shared machine hits both sides alike. A block is 200 runs of each;
its ratio is median(runner) / median(bare). Load from other processes still moves a
block's ratio by several percent, so the suite runs 3 blocks (5 in a full run) and reports
the block with the median ratio; every block's ratio is in the detail.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from bench._harness import Context, CpuWatch, Figure, median, percentile, ratio
from reflex_agent.runner import command_for, run_script

NAME = "agent_overhead"
UNIT = "ms/run"
GOAL = "ratio <= 1.10 (runner vs bare create_subprocess_exec)"
GOAL_RATIO = 1.10
RUNS = 200
WARMUP = 20
BLOCKS_QUICK = 3
BLOCKS_FULL = 5

SCRIPT = 'echo "OK - trivial | x=1;;;0;1"\n'


async def _bare(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    await proc.communicate()
    return time.perf_counter() - started


async def _runner(path: Path, cwd: Path) -> float:
    started = time.perf_counter()
    outcome = await run_script(path, timeout=30.0, cwd=cwd)
    elapsed = time.perf_counter() - started
    if outcome.exit_code != 0:
        raise RuntimeError(f"trivial script failed through the runner: {outcome}")
    return elapsed


async def _block(script: Path, argv: list[str], cwd: Path) -> tuple[list[float], list[float]]:
    runner_times: list[float] = []
    bare_times: list[float] = []
    for index in range(RUNS):
        if index % 2:
            bare_times.append(await _bare(argv, cwd))
            runner_times.append(await _runner(script, cwd))
        else:
            runner_times.append(await _runner(script, cwd))
            bare_times.append(await _bare(argv, cwd))
    return runner_times, bare_times


async def run(ctx: Context) -> Figure:
    directory = ctx.scratch("overhead")
    script = directory / "trivial.sh"
    script.write_text(SCRIPT, encoding="utf-8")
    argv = command_for(script)  # the same argv the runner builds: ["/bin/sh", path]
    for _ in range(WARMUP):
        await _runner(script, directory)
        await _bare(argv, directory)
    blocks = int(ctx.pick(BLOCKS_QUICK, BLOCKS_FULL))
    ctx.log(f"agent_overhead: {blocks} blocks of {RUNS} runs each, interleaved")
    watch = CpuWatch()
    measured = [await _block(script, argv, directory) for _ in range(blocks)]
    load = watch.result()
    ratios = [median(runner) / median(bare) for runner, bare in measured]
    chosen = sorted(range(blocks), key=lambda index: ratios[index])[blocks // 2]
    runner_times, bare_times = measured[chosen]
    value = median(runner_times) * 1000
    baseline = median(bare_times) * 1000
    figure_ratio = ratio(value, baseline)
    detail = {
        "runs_per_block": RUNS,
        "block_ratios": ratios,
        "runner_p90_ms": percentile(runner_times, 90) * 1000,
        "bare_p90_ms": percentile(bare_times, 90) * 1000,
        "mean_ratio": sum(runner_times) / sum(bare_times),
        "other_load_cores": load["other_cores"],
        "baseline": "median of bare asyncio.create_subprocess_exec + communicate()",
    }
    ok = figure_ratio is not None and figure_ratio <= GOAL_RATIO
    return Figure(NAME, value, UNIT, GOAL, baseline, figure_ratio, ok, detail)
