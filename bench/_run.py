"""Child entry point: `python -m bench._run [--quick] NAME [NAME ...]`.

The suite (`python -m bench`) runs each group of benchmarks in a child process like this
one, in a session of its own: a benchmark that hangs or crashes cannot take the suite with
it, its processes can all be killed with one signal to its group, and its memory and
threads are gone before the next benchmark starts. Benchmarks named together share one
`Context` (the three agent benchmarks measure the same agent run).

stdout carries exactly one JSON line per benchmark; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import traceback
from pathlib import Path

from bench._harness import ENV_TMP, Context, Figure


async def _run(names: list[str], quick: bool, tmp: Path) -> None:
    ctx = Context(quick=quick, tmp=tmp)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        try:
            figure: Figure = await module.run(ctx)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            figure = Figure.failed(name, module.UNIT, module.GOAL, f"{type(exc).__name__}: {exc}")
        print(figure.to_json(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    given = os.environ.get(ENV_TMP)
    if given:
        asyncio.run(_run(args.names, args.quick, Path(given)))
        return
    with tempfile.TemporaryDirectory(prefix="reflex-bench-") as tmp:
        asyncio.run(_run(args.names, args.quick, Path(tmp)))


if __name__ == "__main__":
    main()
