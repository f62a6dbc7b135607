"""Fixtures for the dashboard tests: a hub, buses on it, simulated agents, the app.

Simulated agents are plain `Bus` clients that register, stay present on `ignore_chan`,
publish protocol messages and (optionally) answer commands with a `state` message, like
the real agent would; no agent process is needed. A second subscriber (`CommandLog`)
records what the dashboard publishes.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config

from .support import CommandLog, SimAgent

TEST_PUB_KEY = "pub-c-reflex-test"
TEST_SUB_KEY = "sub-c-reflex-test"

MakeBus = Callable[..., Awaitable[Bus]]


def pytest_configure(config: pytest.Config) -> None:
    """Write the snapshot failure report to the temp dir, not into the working tree."""
    option = getattr(config.option, "snapshot_report", None)
    if option == "snapshot_report.html":
        config.option.snapshot_report = str(
            Path(tempfile.gettempdir()) / "reflex-tui-snapshot-report.html"
        )


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock times on screen (hh:mm:ss) in UTC, so snapshots do not depend on the host."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def scripts_dir(tmp_path: Path) -> Path:
    path = tmp_path / "scripts"
    path.mkdir()
    return path


@pytest.fixture
def tui_config(hub: Any, scripts_dir: Path) -> Config:
    return Config(
        pub=TEST_PUB_KEY,
        sub=TEST_SUB_KEY,
        origin=hub.origin,
        ssl=False,
        scripts=scripts_dir,
        presence_timeout=20,
        local=True,
        # Uploads are signed: keep the operator key in the test's tmp dir, never ~/.config.
        signing_key=scripts_dir.parent / "operator.key",
    )


def bus_settings(hub: Any, user_id: str, **overrides: Any) -> BusSettings:
    values: dict[str, Any] = {
        "publish_key": TEST_PUB_KEY,
        "subscribe_key": TEST_SUB_KEY,
        "user_id": user_id,
        "origin": hub.origin,
        "ssl": False,
        "reconnect_interval": 0.2,
        "request_timeout": 5,
        "connect_timeout": 2,
        "presence_timeout": 20,
    }
    values.update(overrides)
    return BusSettings(**values)


@pytest.fixture
async def make_bus(hub: Any) -> AsyncIterator[MakeBus]:
    buses: list[Bus] = []

    async def factory(user_id: str, **overrides: Any) -> Bus:
        bus = Bus(bus_settings(hub, user_id, **overrides))
        await bus.start()
        buses.append(bus)
        return bus

    yield factory
    for bus in reversed(buses):
        await bus.close()


@pytest.fixture
async def make_agent(make_bus: MakeBus, tui_config: Config) -> AsyncIterator[Callable[..., Any]]:
    async def factory(name: str, **kwargs: Any) -> SimAgent:
        from reflex_core.protocol import device_id

        bus = await make_bus(device_id(name))
        return SimAgent(bus, tui_config, name, **kwargs)

    yield factory


@pytest.fixture
async def command_log(make_bus: MakeBus, tui_config: Config) -> CommandLog:
    bus = await make_bus("test-observer")
    log = CommandLog(bus, tui_config)
    await log.start()
    return log


@pytest.fixture
async def dashboard_bus(make_bus: MakeBus) -> Bus:
    return await make_bus("reflex-tui.test")
