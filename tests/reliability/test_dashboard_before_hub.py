"""The dashboard started while its hub is unreachable (issue 7, Reliability, fourth item).

Why: after a reboot the dashboard may well come up before the hub (or before the network);
it must say so plainly and keep retrying, not crash or sit blank, and it must connect and
load the fleet once the hub is there, even after it has been failing for a while (its retry
back-off must not leave it idle long after the hub came back).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.events import ConnectionState
from reflex_core.protocol import ResultsMessage, device_channel
from reflex_tui.app import make_app
from tests.agent.agent_harness import free_port
from tests.tui.support import card, header_text, pct, wait_for

from .support import PRESENCE_TIMEOUT, HubProcess

pytestmark = pytest.mark.timeout(60)

#: Failed start-up attempts before the hub appears: the back-off (1, 2, 4, 8, 16 s...) has
#: grown to 16 s by then, so a dashboard that only retried on its back-off would sit idle for
#: ~15 s after the hub came back (measured 7.6 s after 4 attempts before the controller fix,
#: see `Controller.backfill_until_done`).
FAILED_ATTEMPTS = 5
#: From the hub's "listening" line to the dashboard connected with the device's card shown:
#: the same bound as reconnecting after an outage. Measured ~1.2-3.1 s (the bus retries its
#: subscription every 3 s, the production default).
CONNECT_WITHIN = 10.0


async def test_dashboard_retries_then_connects_when_the_hub_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reflex_tui.controller")
    port = free_port()
    config = Config(
        origin=f"127.0.0.1:{port}",
        scripts=tmp_path / "tui-scripts",
        state_dir=tmp_path / "tui-state",
        presence_timeout=PRESENCE_TIMEOUT,
    )
    hub = HubProcess(tmp_path / "hub-data", tmp_path / "logs", port=port)

    def failures() -> int:
        return sum("backfill failed" in r.getMessage() for r in caplog.records)

    # The production bus (from the config, default retry settings), as the CLI builds it.
    app = make_app(config, resend_check_interval=None)
    publisher: Bus | None = None
    try:
        async with app.run_test(size=(200, 30)) as pilot:
            await wait_for(
                pilot,
                lambda: failures() >= FAILED_ATTEMPTS,
                within=30,
                what=f"{FAILED_ATTEMPTS} failed attempts",
            )
            header = header_text(app)
            print(f"header while the hub is missing: {header!r}")
            assert "retrying:" in header  # says it is retrying, and why
            assert f"127.0.0.1:{port}" in header  # and where it is trying to reach
            assert app.fleet.connection.state is not ConnectionState.CONNECTED
            assert app.is_running and app.return_code is None  # no crash, no exit

            back = await hub.start()
            publisher = Bus(BusSettings.from_config(config, user_id="rel-late"))
            await publisher.start()
            await publisher.set_uuid_metadata("rel-late", name="rel-late")
            await publisher.set_channel_members(config.channel, ["rel-late"])
            message = ResultsMessage(
                host="rel-late",
                id="rel-late",
                seq=1,
                ts=time.time(),
                interval=10,
                results=(pct("cpu", 3.0),),
            )
            await publisher.publish(device_channel("rel-late"), message.to_wire())
            await wait_for(
                pilot,
                lambda: (
                    app.fleet.connection.state
                    in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED)
                    and app.controller is not None
                    and app.controller.backfilled
                    and card(app, "rel-late") is not None
                    and "cpu" in app.fleet.devices["rel-late"].tests
                ),
                within=CONNECT_WITHIN - (time.monotonic() - back),
                what="connected, loaded, card with its result",
            )
            took = time.monotonic() - back
            header = header_text(app)
            assert "● connected" in header and "retrying" not in header, header
            print(f"connected and loaded {took:.2f}s after the hub appeared")
    finally:
        if publisher is not None:
            await publisher.close()
        await hub.close()
