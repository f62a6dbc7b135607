"""Driving the real dashboard headless: fleet setup over the wire, readiness, key latency.

Shared by the dashboard benchmarks (tui_ingest, fleet_join). The app is `reflex_tui`'s
own `make_app()` with its own `Bus` on a hub subprocess, run with `App.run_test()`
(Textual's headless driver). Headless Textual still lays out and renders every update
(the compositor's update objects are built), it only skips turning them into terminal
escape sequences and writing them; `KeyProbe` does that conversion itself, so the cost of
a real terminal frame (minus the write syscall) is part of what it measures.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from textual import events
from textual._compositor import CompositorUpdate

from bench import _wire
from bench._payloads import TEST_NAMES, results_payload, state_payload
from reflex_core.config import Config
from reflex_tui.app import ReflexApp, make_app
from reflex_tui.state import Fleet

MEMBERSHIP_CHANNEL = "availability_monitor"
SIZE = (160, 50)


def dashboard_config(origin: str, scripts: Path) -> Config:
    return Config(origin=origin, ssl=False, scripts=scripts, local=True)


def device_ids(count: int, prefix: str = "sim") -> list[str]:
    return [f"{prefix}-{index:04d}" for index in range(count)]


async def register_devices(
    http: aiohttp.ClientSession,
    url: str,
    devices: list[str],
    *,
    tests: int,
    publish_round: bool = True,
    concurrency: int = 16,
) -> None:
    """What the agents would have done before the dashboard starts: metadata, membership,
    one `state` and one `results` message each (so every card has its tests)."""
    gate = asyncio.Semaphore(concurrency)
    rng = random.Random(5)

    async def one(ident: str) -> None:
        async with gate:
            await _wire.set_uuid_metadata(
                http, url, ident, name=f"{ident}.bench", custom={"ignore": "", "interval": 10}
            )
            if publish_round:
                channel = f"device.{ident}"
                await _wire.publish(
                    http, url, channel, _wire.dumps(state_payload(ident, tests)), uuid=ident
                )
                body = _wire.dumps(results_payload(ident, 1, tests, rng))
                await _wire.publish(http, url, channel, body, uuid=ident)

    await asyncio.gather(*(one(ident) for ident in devices))
    await _wire.set_members(http, url, MEMBERSHIP_CHANNEL, devices, uuid="bench-setup")


async def wait_until(
    predicate: Callable[[], object], *, within: float, what: str, step: float = 0.02
) -> float:
    """Let the app's loop run until `predicate()` holds; returns when it did (monotonic)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(step)
    return time.monotonic()


def fleet_complete(app: ReflexApp, devices: list[str], tests: int) -> bool:
    """Every device is a member with all its tests, and has a card in the grid."""
    fleet = app.fleet
    for ident in devices:
        device = fleet.devices.get(ident)
        if device is None or not device.member or len(device.tests) < tests:
            return False
    cards = app.dashboard.grid.cards
    return all(ident in cards for ident in devices)


async def ready(app: ReflexApp, devices: list[str], tests: int, within: float) -> None:
    controller = app.controller
    assert controller is not None
    await wait_until(
        lambda: controller.backfilled and fleet_complete(app, devices, tests),
        within=within,
        what=f"{len(devices)} devices on the dashboard",
    )


def new_app(origin: str, scripts: Path, fleet: Fleet | None = None) -> ReflexApp:
    """The dashboard as `reflex-tui` builds it (its own Bus from the config), minus the
    hourly re-send check of old scripts, which is not part of any figure."""
    return make_app(dashboard_config(origin, scripts), fleet=fleet, resend_check_interval=None)


class KeyProbe:
    """Key-to-repaint latency: a key event is sent the way the terminal driver sends it;
    the sample ends when the first frame after the cursor moved has been rendered."""

    def __init__(self, app: ReflexApp) -> None:
        self.app = app
        self.samples: list[float] = []
        self.timeouts = 0
        self._sent: float | None = None
        self._before: tuple[object, object] | None = None
        self._done = asyncio.Event()
        self._frames = 0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            if app.is_headless and isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # what a real terminal frame costs
            self._frames += 1
            if self._sent is not None and self._cursor() != self._before:
                self.samples.append(time.perf_counter() - self._sent)
                self._sent = None
                self._done.set()

        app._display = display  # type: ignore[method-assign]

    def _cursor(self) -> tuple[object, object]:
        screen = self.app.dashboard
        return (screen.selected_id, screen.selected_test)

    async def press(self, key: str, within: float = 2.0) -> None:
        driver = self.app._driver
        assert driver is not None
        self._before = self._cursor()
        self._done.clear()
        event = events.Key(key, None)
        event.set_sender(self.app)
        self._sent = time.perf_counter()
        driver.send_message(event)
        try:
            async with asyncio.timeout(within):
                await self._done.wait()
        except TimeoutError:
            self._sent = None
            self.timeouts += 1
            self.samples.append(within)

    async def run(self, keys: int, gap: tuple[float, float], rng: random.Random) -> None:
        """Alternate down/up (the cursor moves between a card's first two tests)."""
        for index in range(keys):
            await asyncio.sleep(rng.uniform(*gap))
            await self.press("down" if index % 2 == 0 else "up")


__all__ = [
    "MEMBERSHIP_CHANNEL",
    "SIZE",
    "TEST_NAMES",
    "KeyProbe",
    "device_ids",
    "fleet_complete",
    "new_app",
    "ready",
    "register_devices",
    "wait_until",
]
