"""How long the dashboard's loop stalls while it backfills (not a test: nothing asserts a speed).

    python -m tests.tui.backfill_probe [--devices 100]

A `reflex-hub --memory` subprocess is filled with an hour of history (360 ten-result rounds
per device, published straight to the hub), then the real dashboard starts in this
process (headless) and backfills it. A task ticking every 5 ms on the same loop records
the gaps between its ticks until every card is complete: the longest gap is the longest
time a key would have waited. Also printed: time per `Ingest.history` call (one device)
and per `Bus.fetch_history` call (one batch of 50 devices, including the network wait).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import _wire
from bench._payloads import results_payload
from bench._tui import new_app, ready, register_devices
from reflex_core.bus import Bus
from reflex_tui.ingest import Ingest

ROUNDS = 360
TESTS = 10


def _timed_sync(owner: Any, name: str, into: list[float]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(owner, name, wrapper)


def _timed_async(owner: Any, name: str, into: list[float]) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(owner, name, wrapper)


async def _fill(url: str, devices: list[str]) -> None:
    rng = random.Random(3)
    now = time.time()
    async with aiohttp.ClientSession() as http:
        await register_devices(http, url, devices, tests=TESTS)
        gate = asyncio.Semaphore(32)

        async def publish(ident: str, k: int) -> None:
            async with gate:
                body = _wire.dumps(results_payload(ident, k + 2, TESTS, rng, now - 3500 + k * 9))
                await _wire.publish(http, url, f"device.{ident}", body, uuid=ident)

        await asyncio.gather(*(publish(d, k) for d in devices for k in range(ROUNDS - 1)))


def _ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


async def main(count: int) -> None:
    history_calls: list[float] = []
    fetch_calls: list[float] = []
    _timed_sync(Ingest, "history", history_calls)
    _timed_async(Bus, "fetch_history", fetch_calls)
    hub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reflex_hub", "--port", "0", "--memory", stdout=subprocess.PIPE
    )
    try:
        assert hub.stdout is not None
        url = (await hub.stdout.readline()).decode().strip().rsplit(" ", 1)[-1]
        devices = [f"sim-{i:03d}" for i in range(count)]
        start = time.monotonic()
        await _fill(url, devices)
        print(f"hub filled: {count * ROUNDS} rounds in {time.monotonic() - start:.1f} s")

        app = new_app(url.removeprefix("http://"), Path(tempfile.mkdtemp()))
        gaps: list[float] = []
        done = asyncio.Event()
        async with app.run_test(size=(160, 48)):

            async def ticker() -> None:
                last = time.monotonic()
                while not done.is_set():
                    await asyncio.sleep(0.005)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            task = asyncio.create_task(ticker())
            start = time.monotonic()
            await ready(app, devices, TESTS, within=600)
            took = time.monotonic() - start
            done.set()
            await task
        print(
            f"backfill of {count} devices: {took:.1f} s; loop gaps: max {_ms(gaps, 1):.0f} ms, "
            f"p99 {_ms(gaps, 0.99):.0f} ms, p50 {_ms(gaps, 0.5):.0f} ms ({len(gaps)} ticks)"
        )
        print(
            f"Ingest.history per device: max {_ms(history_calls, 1):.0f} ms, "
            f"p50 {_ms(history_calls, 0.5):.0f} ms; Bus.fetch_history per batch: "
            f"max {_ms(fetch_calls, 1):.0f} ms ({len(fetch_calls)} calls)"
        )
    finally:
        hub.terminate()
        await hub.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    asyncio.run(main(parser.parse_args().devices))
