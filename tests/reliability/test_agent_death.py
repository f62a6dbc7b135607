"""Agents that die, seen from the dashboard (issue 7, Reliability, second item).

Why: an operator must be able to tell a crashed agent (SIGKILL: no leave is sent, so only the
missing results and then the presence timeout reveal it) from one that was stopped (SIGTERM:
a clean leave, offline at once, and no check processes left running on the host), and a
restarted agent must come back with the settings the operator gave it, not its config file's.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest

from reflex_core.config import Config
from reflex_hub import HubHandle
from reflex_tui.app import make_app
from reflex_tui.state import STALE_INTERVALS
from tests.tui.support import card_text, ready, wait_for

from .support import PRESENCE_TIMEOUT, AgentProcess, Recorder, wait_until

pytestmark = pytest.mark.timeout(90)

INTERVAL = 1
#: Slack on top of "3 missed intervals": the dashboard re-evaluates staleness once a
#: second (TICK_INTERVAL) and the last result may have arrived up to one interval before
#: the kill.
STALE_SLACK = 2.0
#: Slack on top of the presence timeout: the hub sweeps every 0.5 s; delivery and repaint.
PRESENCE_SLACK = 5.0
SIGTERM_OFFLINE_WITHIN = 2.0


async def test_sigkill_stale_then_offline_sigterm_offline_clean_and_restart_restores(
    tmp_path: Path, hub: HubHandle
) -> None:
    config = Config(
        origin=hub.origin,
        scripts=tmp_path / "tui-scripts",
        state_dir=tmp_path / "tui-state",
        presence_timeout=PRESENCE_TIMEOUT,
        interval=INTERVAL,
    )
    app = make_app(config, resend_check_interval=None)
    assert app.bus is not None and app.controller is not None
    controller = app.controller
    seen = Recorder()
    app.bus.add_listener(on_message=seen.on_message)
    killed = AgentProcess(tmp_path, "rel-kill", hub.origin, interval=INTERVAL)
    stopped = AgentProcess(
        tmp_path,
        "rel-term",
        hub.origin,
        interval=INTERVAL,
        timeout=60.0,  # the slow check is still running (with a child) when SIGTERM comes
        scripts={
            "ok.sh": "echo 'OK | v=1'\n",
            "extra.sh": "echo 'OK | e=2'\n",
            "slow.sh": "sleep 300 &\nsleep 300\n",
        },
    )
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot, app)
            await killed.start()
            await stopped.start()
            fleet = app.fleet

            def device_ok(ident: str) -> bool:
                device = fleet.get(ident)
                return (
                    device is not None
                    and device.member
                    and device.online
                    and "ok" in (device.tests)
                )

            await wait_for(
                pilot,
                lambda: device_ok("rel-kill") and device_ok("rel-term"),
                within=30,
                what="both agents online with results",
            )
            # The operator changes rel-term's settings; its `state` confirms them.
            await controller.set_ignore("rel-term", ["extra"])
            await controller.set_interval("rel-term", 2)
            term = fleet.devices["rel-term"]
            await wait_for(
                pilot,
                lambda: term.ignored == ("extra",) and term.interval == 2,
                what="rel-term confirms ignore [extra] and interval 2",
            )
            await wait_until(
                lambda: any("sleep" in " ".join(p.cmdline()) for p in stopped.descendants()),
                within=10,
                what="rel-term's slow check running with its child",
            )
            children = stopped.descendants()
            assert not fleet.is_stale(fleet.devices["rel-kill"])

            # --- SIGKILL one, SIGTERM the other, at the same moment
            kill_at = time.monotonic()
            await killed.signal_and_wait(signal.SIGKILL)
            term_at = time.monotonic()
            code = await stopped.signal_and_wait(signal.SIGTERM)
            assert code == 0, stopped.lines[-20:]

            # SIGTERM: offline on the dashboard within 2 s, no process of the agent left.
            await wait_for(
                pilot,
                lambda: not fleet.devices["rel-term"].online,
                within=SIGTERM_OFFLINE_WITHIN - (time.monotonic() - term_at),
                what="rel-term offline after SIGTERM",
            )
            term_offline = time.monotonic() - term_at
            gone, alive = psutil.wait_procs(children, timeout=3)
            assert not alive, f"left behind by SIGTERM: {alive}"
            assert "Traceback" not in "\n".join(stopped.lines)

            # SIGKILL: stale after 3 missed intervals (not before), still "online" meanwhile.
            stale_bound = STALE_INTERVALS * INTERVAL + STALE_SLACK
            await wait_for(
                pilot,
                lambda: "stale" in card_text(app, "rel-kill"),
                within=stale_bound,
                what="rel-kill stale",
            )
            stale_after = time.monotonic() - kill_at
            device = fleet.devices["rel-kill"]
            assert device.last_update is not None
            assert time.time() - device.last_update > STALE_INTERVALS * INTERVAL

            # Meanwhile rel-term restarts: the operator's settings come back (App Context,
            # else its state file), not the config file's (no ignore list, interval 1).
            restarted = AgentProcess(
                tmp_path,
                "rel-term",
                hub.origin,
                interval=INTERVAL,
                scripts={"ok.sh": "echo 'OK | v=1'\n", "extra.sh": "echo 'OK | e=2'\n"},
            )
            (restarted.scripts / "slow.sh").unlink(missing_ok=True)
            mark = len(seen.results("rel-term"))
            await restarted.start()
            try:
                await wait_for(
                    pilot,
                    lambda: (
                        len(seen.results("rel-term")) >= mark + 2
                        and fleet.devices["rel-term"].online
                    ),
                    within=20,
                    what="rel-term back online with results",
                )
                for got in seen.results("rel-term")[mark:]:
                    message = got.message
                    assert message.interval == 2  # type: ignore[union-attr]
                    assert "extra" not in {r.test for r in message.results}  # type: ignore[union-attr]
                assert term.ignored == ("extra",) and term.interval == 2
                joined = "\n".join(restarted.lines)
                assert "ignore list extra" in joined and "interval 2 s" in joined, joined
            finally:
                await restarted.close()

            # SIGKILL: offline within the presence timeout (no leave was ever sent).
            await wait_for(
                pilot,
                lambda: not fleet.devices["rel-kill"].online,
                within=PRESENCE_TIMEOUT + PRESENCE_SLACK - (time.monotonic() - kill_at),
                what="rel-kill offline",
            )
            offline_after = time.monotonic() - kill_at
            assert "offline" in card_text(app, "rel-kill")
            print(
                f"SIGKILL: stale after {stale_after:.2f}s, offline after {offline_after:.2f}s; "
                f"SIGTERM: exited and offline after {term_offline:.2f}s"
            )
    finally:
        await killed.close()
        await stopped.close()
