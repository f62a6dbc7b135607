"""Protocol-valid `results` and `state` payloads for simulated devices.

Built as plain dicts in the exact shape `reflex_core.protocol` produces (a test checks
nothing here; `bench.tui_ingest` counts a malformed message as a failure), because a load
generator that ran every payload through the protocol dataclasses would measure itself.
"""

from __future__ import annotations

import random
import time
from typing import Any

from reflex_core import __version__

#: Test names of simulated devices: the bundled checks first, then plausible extras.
TEST_NAMES = ("cpu", "memory", "disk", "swap", "load", "processes", "net", "ntp", "http", "dns")


def result_payload(test: str, value: float, ts: float) -> dict[str, Any]:
    word, code = ("critical", 2) if value >= 90 else ("warning", 1) if value >= 80 else ("ok", 0)
    return {
        "test": test,
        "status": word,
        "code": code,
        "output": f"{test.upper()} {word.upper()} - {value:.1f}% used",
        "value": value,
        "unit": "%",
        "perf": [
            {
                "label": test,
                "value": value,
                "uom": "%",
                "warn": "80",
                "crit": "90",
                "min": 0.0,
                "max": 100.0,
            }
        ],
        "duration_ms": 41,
        "ts": ts,
    }


def results_payload(
    device: str, seq: int, tests: int, rng: random.Random, ts: float | None = None
) -> dict[str, Any]:
    """One round of `tests` results from `device` (values vary, mostly OK)."""
    now = time.time() if ts is None else ts
    return {
        "v": 1,
        "kind": "results",
        "host": f"{device}.bench",
        "id": device,
        "seq": seq,
        "ts": now,
        "interval": 10,
        "results": [
            result_payload(name, round(rng.uniform(1, 92), 1), now) for name in TEST_NAMES[:tests]
        ],
    }


def state_payload(device: str, tests: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "state",
        "host": f"{device}.bench",
        "id": device,
        "ts": time.time(),
        "interval": 10,
        "ignored": [],
        "scripts": [
            {"test": name, "file": f"{name}.py", "sha256": "0" * 64} for name in TEST_NAMES[:tests]
        ],
        "rejected": [],
        "agent_version": __version__,
    }
