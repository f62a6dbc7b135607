"""Quick ingest measurement for the dashboard (not a test: nothing here asserts a speed).

    python -m tests.tui.ingest_probe [--devices 500] [--tests 10] [--rate 2000] [--seconds 20]

A `reflex-hub` subprocess, a publisher subprocess posting one `results` message per
device per round straight to the hub's publish endpoint (with `uuid=<device id>`, so
each message comes from its own device, as 500 agents would), and the real dashboard
in this process (headless, 160x48) subscribed to `device.*`. It reports the results
per second the dashboard applied against the rate offered, the backlog left at the end,
repaints per second, and the latency of a key press (pilot press + pause, i.e. until the
key's action and the resulting refresh were processed) sampled under load.
Memory (RSS) of this process is printed at the end too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from textual import events
from textual.strip import Strip

from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_tui.app import ReflexApp, make_app
from reflex_tui.widgets.device_card import DeviceCard

PUB, SUB = "pub-c-probe", "sub-c-probe"

PUBLISHER = textwrap.dedent(
    """
    import asyncio, json, sys, time, aiohttp
    url, devices, tests, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4]), float(sys.argv[5])
    async def main():
        per_second = rate / tests            # messages per second
        sent = 0
        async with aiohttp.ClientSession() as session:
            start = time.monotonic()
            seq = 0
            while time.monotonic() - start < seconds:
                seq += 1
                for d in range(devices):
                    ident = f"dev{d:04d}"
                    now = time.time()
                    msg = {"v": 1, "kind": "results", "host": ident, "id": ident, "seq": seq,
                           "ts": now, "interval": 10, "results": [
                               {"test": f"t{t}", "status": "ok", "code": 0,
                                "output": f"T{t} OK - {seq % 100}% used",
                                "value": float((seq + d + t) % 100), "unit": "%",
                                "perf": [], "duration_ms": 3, "ts": now}
                               for t in range(tests)]}
                    target = start + sent / per_second
                    delay = target - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    async with session.post(
                        f"{url}/publish/{sys.argv[6]}/{sys.argv[7]}/0/device.{ident}/0",
                        params={"uuid": ident, "store": "0"}, data=json.dumps(msg)) as r:
                        await r.read()
                    sent += 1
            print(json.dumps({"sent": sent, "elapsed": time.monotonic() - start}))
    asyncio.run(main())
    """
)


RENDERS: list[tuple[float, str | None]] = []
_original_render_line = DeviceCard.render_line


def _recording_render_line(self: DeviceCard, y: int) -> Strip:
    if self.selected:
        RENDERS.append((time.perf_counter(), self.cursor))
    return _original_render_line(self, y)


DeviceCard.render_line = _recording_render_line  # type: ignore[method-assign]

SPENT: dict[str, float] = {}


def _timed(owner: type, name: str, label: str) -> None:
    """Accumulate wall time spent in owner.name (where the event loop's time goes)."""
    original = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[label] = SPENT.get(label, 0.0) + time.perf_counter() - began

    setattr(owner, name, wrapper)


def _instrument() -> None:
    from textual.screen import Screen

    from reflex_tui.ingest import Ingest
    from reflex_tui.screens.dashboard import DashboardScreen

    _timed(Ingest, "message", "ingest (parse + state)")
    _timed(DashboardScreen, "fleet_changed", "repaint bookkeeping")
    _timed(DashboardScreen, "tick", "tick")
    _timed(Screen, "_compositor_refresh", "textual render + write")
    _timed(Screen, "_refresh_layout", "textual layout")


async def key_to_repaint(app: ReflexApp, key: str, limit: float = 5.0) -> float | None:
    """Post a key as the terminal driver would, and time it until the selected card was
    rendered with the moved cursor (pilot.press waits for an idle CPU, never true here)."""
    screen = app.dashboard
    before = screen.selected_test
    RENDERS.clear()
    began = time.perf_counter()
    event = events.Key(key, key)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)
    while time.perf_counter() - began < limit:
        await asyncio.sleep(0.001)
        if screen.selected_test != before and any(c == screen.selected_test for _, c in RENDERS):
            done = next(t for t, c in RENDERS if c == screen.selected_test)
            return done - began
    return None


def start_hub_process() -> tuple[subprocess.Popen[str], str]:
    """`reflex-hub --port 0 --memory` in its own process; returns it and its URL."""
    hub = subprocess.Popen(
        [sys.executable, "-m", "reflex_hub.cli", "--port", "0", "--memory"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub.stdout is not None
    line = hub.stdout.readline().strip()
    return hub, line.rsplit(" ", 1)[-1]


async def probe(devices: int, tests: int, rate: float, seconds: float) -> dict[str, object]:
    hub, url = start_hub_process()
    origin = url.removeprefix("http://")
    try:
        config = Config(pub=PUB, sub=SUB, origin=origin, ssl=False, scripts=Path("."))
        settings = BusSettings(
            publish_key=PUB, subscribe_key=SUB, user_id="probe-admin", origin=origin, ssl=False
        )
        async with Bus(settings) as admin:
            ids = [f"dev{d:04d}" for d in range(devices)]
            await admin.set_channel_members(config.channel, ids)
        bus = Bus(
            BusSettings(
                publish_key=PUB,
                subscribe_key=SUB,
                user_id="reflex-tui.probe",
                origin=origin,
                ssl=False,
            )
        )
        await bus.start()
        app = make_app(config, bus=bus, resend_check_interval=None)
        async with app.run_test(size=(160, 48)) as pilot:
            controller = app.controller
            assert controller is not None
            while not controller.backfilled:
                await pilot.pause(0.05)
            publisher = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PUBLISHER,
                url,
                str(devices),
                str(tests),
                str(rate),
                str(seconds),
                PUB,
                SUB,
                stdout=subprocess.PIPE,
            )
            # Warm-up: the first round fills every card (each one grows, so the screen
            # is laid out again); measure the steady state after it.
            warmup_latencies: list[float] = []
            first_round = time.monotonic()
            while controller.ingest.applied < devices and time.monotonic() - first_round < 30:
                await asyncio.sleep(0.25)
                latency = await key_to_repaint(app, "jk"[len(warmup_latencies) % 2])
                if latency is not None:
                    warmup_latencies.append(latency)
            warmup = time.monotonic() - first_round
            start_applied, start_repaints = controller.ingest.applied, app.repaints
            SPENT.clear()
            cpu_start = time.process_time()
            profile_path = os.environ.get("PROBE_PROFILE")
            profiler = None
            if profile_path:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            start = time.monotonic()
            latencies: list[float] = []
            keys = ["j", "k"]
            while publisher.returncode is None:
                await asyncio.sleep(0.25)
                latency = await key_to_repaint(app, keys[len(latencies) % 2])
                if latency is not None:
                    latencies.append(latency)
                try:
                    await asyncio.wait_for(publisher.wait(), 0.01)
                except TimeoutError:
                    pass
            assert publisher.stdout is not None
            report = json.loads((await publisher.stdout.read()).decode())
            report["sent"] -= start_applied  # messages of the warm-up round
            elapsed = time.monotonic() - start
            cpu = time.process_time() - cpu_start
            if profiler is not None and profile_path:
                profiler.disable()
                profiler.dump_stats(profile_path)
            applied_at_end = controller.ingest.applied - start_applied
            # Let the dashboard drain what is still queued, to measure the backlog.
            drain_start = time.monotonic()
            while controller.ingest.applied - start_applied < report["sent"]:
                if time.monotonic() - drain_start > 30:
                    break
                await pilot.pause(0.05)
            drain = time.monotonic() - drain_start
            applied = controller.ingest.applied - start_applied
            repaints = app.repaints - start_repaints
        await bus.close()
    finally:
        hub.terminate()
        hub.wait(5)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    latencies.sort()
    if not latencies:
        latencies = [float("nan")]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "devices": devices,
        "tests": tests,
        "offered_results_per_s": round(report["sent"] * tests / elapsed),
        "applied_results_per_s_during_load": round(applied_at_end * tests / elapsed),
        "messages_sent": report["sent"],
        "messages_applied": applied,
        "drain_after_load_s": round(drain, 2),
        "repaints_per_s": round(repaints / (elapsed + drain), 1),
        "key_latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "key_latency_ms_p99": round(p99 * 1000, 1),
        "key_samples": len(latencies),
        "warmup_s": round(warmup, 1),
        "warmup_key_latency_ms_max": round(max(warmup_latencies, default=0) * 1000, 1),
        "max_rss_mb": round(rss_mb),
        "dashboard_cpu_share": round(cpu / elapsed, 2),
        "loop_time_share": {k: round(v / elapsed, 3) for k, v in sorted(SPENT.items())},
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--tests", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2000.0, help="results per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    _instrument()
    result = asyncio.run(probe(args.devices, args.tests, args.rate, args.seconds))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
