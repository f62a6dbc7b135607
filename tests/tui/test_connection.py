"""Connection state in the header: reconnecting during an outage, and a dashboard started
before its hub that connects (and loads its devices) once the hub appears."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_tui.app import make_app

from .conftest import TEST_PUB_KEY, TEST_SUB_KEY, bus_settings
from .support import card, header_text, pct, ready, wait_for

pytestmark = pytest.mark.timeout(60)


async def test_header_shows_reconnecting_during_outage(
    hub: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    app = make_app(tui_config, bus=dashboard_bus, resend_check_interval=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        assert "● connected" in header_text(app)
        await hub.stop()
        await wait_for(pilot, lambda: "reconnecting since" in header_text(app), what="outage")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dashboard_started_before_hub_connects_when_it_appears(
    hub_factory: Any, tmp_path: Path
) -> None:
    port = free_port()
    origin = f"127.0.0.1:{port}"
    config = Config(pub=TEST_PUB_KEY, sub=TEST_SUB_KEY, origin=origin, ssl=False, scripts=tmp_path)
    fake_hub = type("Hub", (), {"origin": origin})()
    bus = Bus(bus_settings(fake_hub, "reflex-tui.early"))
    app = make_app(config, bus=bus, resend_check_interval=None)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: "retrying" in header_text(app), what="no hub yet")
            await hub_factory(port=port, memory=True)
            agent = Bus(bus_settings(fake_hub, "web1"))
            await agent.start()
            await agent.set_channel_members(config.channel, ["web1"])
            await agent.publish(
                "device.web1",
                {
                    "v": 1,
                    "kind": "results",
                    "host": "web1",
                    "id": "web1",
                    "seq": 1,
                    "ts": 1.0,
                    "interval": 10,
                    "results": [pct("cpu", 3.0).to_wire()],
                },
            )
            await ready(pilot, app)
            await wait_for(pilot, lambda: card(app, "web1") is not None, within=15)
            assert "retrying" not in header_text(app)
            await agent.close()
    finally:
        await bus.close()
