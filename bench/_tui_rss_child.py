"""Child of `bench.tui_rss`: a dashboard holding a given amount of history, then idle.

`python -m bench._tui_rss_child ORIGIN SCRIPTS_DIR {hour|round} {ingest|state}`

Builds the fleet (500 devices x 10 tests), then runs the real dashboard on it (headless,
connected to the hub at ORIGIN like `reflex-tui`, 500 cards mounted), collects garbage,
prints `{"ready": true}` and waits for a line on stdin; the parent measures this
process's RSS from outside meanwhile.

History is fed one of two ways:

* `ingest`: the dashboard's own backfill path: per device, 360 stored `results`
  messages (one hour at 10 s) as `HistoryEntry` objects through `Ingest.history()`, which
  parses, attributes and applies them exactly as after a restart. Faithful, including the
  garbage parsing leaves behind, but about 90 s of CPU for 180,000 messages.
* `state`: the same retained state built directly: what `Device.apply_results_batch`
  ends with (each test's 360-point ring and its latest `Result`), without parsing 180,000
  messages. Used by `--quick` to stay within its time budget.

`round` gives each device one round only (the baseline: the same dashboard without the
hour of history).
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
import time
from pathlib import Path

from bench import _tui
from bench._payloads import TEST_NAMES, results_payload, state_payload
from reflex_core.events import ChannelMember, HistoryEntry
from reflex_core.protocol import parse_device_message
from reflex_tui.ingest import Ingest
from reflex_tui.state import HISTORY_POINTS, Fleet, TestSeries

DEVICES = 500
TESTS = 10
INTERVAL = 10.0
TT_PER_SECOND = 10_000_000


def _entry(device: str, ts: float, payload: dict[str, object]) -> HistoryEntry:
    return HistoryEntry(
        channel=f"device.{device}",
        timetoken=int(ts * TT_PER_SECOND),
        payload=payload,
        publisher=device,
    )


def build_fleet(history: str, feed: str, now: float) -> Fleet:
    fleet = Fleet()
    ingest = Ingest(fleet, membership_channel=_tui.MEMBERSHIP_CHANNEL, ignore_chan="ignore")
    devices = _tui.device_ids(DEVICES)
    ingest.members(
        ChannelMember(uuid=ident, name=f"{ident}.bench", custom={"ignore": "", "interval": 10})
        for ident in devices
    )
    rng = random.Random(17)
    points = HISTORY_POINTS if history == "hour" else 1
    start = now - (points - 1) * INTERVAL
    for ident in devices:
        state = _entry(ident, start - 1, state_payload(ident, TESTS))
        if feed == "ingest" or points == 1:
            entries = [state]
            for index in range(points):
                ts = start + index * INTERVAL
                payload = results_payload(ident, index + 1, TESTS, rng, ts=ts)
                entries.append(_entry(ident, ts, payload))
            ingest.history(ident, entries)
            continue
        # `state` feed: the end state of apply_results_batch, built without parsing.
        ingest.history(ident, [state])
        device = fleet.devices[ident]
        last = parse_device_message(results_payload(ident, points, TESTS, rng, ts=now))
        for index, name in enumerate(TEST_NAMES[:TESTS]):
            series = device.tests[name] = TestSeries(name)
            ring = [(start + i * INTERVAL, round(rng.uniform(1, 92), 1), 0) for i in range(points)]
            series.history.merge(ring)
            result = last.results[index]  # type: ignore[union-attr]
            series.last, series.last_at = result, now
        device.last_update, device.interval, device.seq = now, 10, points
        device.touch()
    return fleet


async def main(origin: str, scripts: Path, history: str, feed: str) -> None:
    fleet = build_fleet(history, feed, time.time())
    app = _tui.new_app(origin, scripts, fleet)
    devices = _tui.device_ids(DEVICES)
    async with app.run_test(size=_tui.SIZE):
        await _tui.ready(app, devices, TESTS, within=120)
        app.repaint_now()
        await asyncio.sleep(1.0)
        gc.collect()
        sys.stdout.write(json.dumps({"ready": True, "devices": len(app.fleet.devices)}) + "\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
