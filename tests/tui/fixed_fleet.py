"""A fixed fleet with a frozen clock: what snapshot tests render (no network, no time).

Values follow deterministic curves, so every run draws the same sparklines and plots.
"""

from __future__ import annotations

import math

from reflex_core.events import ConnectionState
from reflex_core.protocol import (
    Perf,
    Rejection,
    Result,
    ResultsMessage,
    StateMessage,
    Status,
)
from reflex_tui.state import Fleet

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _curve(base: float, swing: float, i: int, phase: float = 0.0) -> float:
    return round(base + swing * math.sin(i / 6.0 + phase), 1)


def _round(
    host: str, ident: str, ts: float, seq: int, interval: int, tests: list[Result]
) -> ResultsMessage:
    return ResultsMessage(
        host=host, id=ident, seq=seq, ts=ts, interval=interval, results=tuple(tests)
    )


def _pct(
    test: str,
    value: float,
    output: str,
    warn: str | None = None,
    crit: str | None = None,
    ts: float = 0.0,
) -> Result:
    if crit and value >= float(crit):
        status = Status.CRITICAL
    elif warn and value >= float(warn):
        status = Status.WARNING
    else:
        status = Status.OK
    perf = (Perf(label=test, value=value, uom="%", warn=warn, crit=crit, min=0, max=100),)
    return Result(test=test, status=status, output=output, value=value, unit="%", perf=perf, ts=ts)


def _fill(
    fleet: Fleet, ident: str, host: str, interval: int, rounds: int, end: float, make: object
) -> None:
    device = fleet.get(ident)
    assert device is not None
    for i in range(rounds):
        ts = end - (rounds - 1 - i) * interval
        tests = make(i, ts)  # type: ignore[operator]
        device.apply_results(_round(host, ident, ts, i, interval, tests), ts)


def build_fleet(clock: FrozenClock | None = None) -> Fleet:
    clock = clock or FrozenClock()
    now = clock.now
    fleet = Fleet(clock=clock, membership_channel="availability_monitor")

    # web1: healthy-ish, one warning, one critical, one disabled test.
    fleet.add_member("web1-example-com", name="web1.example.com", settings=(("swap",), 10))
    fleet.set_online("web1-example-com", True)

    def web1(i: int, ts: float) -> list[Result]:
        cpu = _curve(20, 10, i)
        return [
            _pct("cpu", cpu, f"CPU OK - {cpu}% used", "80", "95", ts),
            _pct("disk", _curve(82, 1, i), "DISK WARNING - /: 82% used", "80", "90", ts),
            Result(
                test="load",
                status=Status.OK,
                output="LOAD OK - 0.42 0.30 0.25",
                value=_curve(0.4, 0.2, i),
                unit="",
                ts=ts,
            ),
            _pct("memory", _curve(93, 2, i, 1.0), "MEMORY CRITICAL - 93% used", "80", "90", ts),
        ]

    _fill(fleet, "web1-example-com", "web1.example.com", 10, 40, now - 4, web1)
    fleet.devices["web1-example-com"].apply_state(
        StateMessage(
            host="web1.example.com",
            id="web1-example-com",
            ts=now - 60,
            interval=10,
            ignored=("swap",),
        ),
        now - 60,
    )

    # db-1: a rejected script and a pending interval change.
    fleet.add_member("db-1", name="db-1", settings=((), 10))
    fleet.set_online("db-1", True)

    def db(i: int, ts: float) -> list[Result]:
        return [
            _pct("cpu", _curve(45, 20, i, 2.0), "CPU OK - 45% used", None, None, ts),
            Result(
                test="processes",
                status=Status.UNKNOWN,
                output="PROCS UNKNOWN - cannot read /proc",
                ts=ts,
            ),
        ]

    _fill(fleet, "db-1", "db-1", 10, 30, now - 7, db)
    db1 = fleet.devices["db-1"]
    db1.apply_state(
        StateMessage(
            host="db-1",
            id="db-1",
            ts=now - 100,
            interval=10,
            rejected=(Rejection("evil.sh", "bad signature: not signed by a trusted key"),),
        ),
        now - 100,
    )
    db1.apply_settings(None, 30, pending=True)

    # edge-3: offline and stale (last result ten minutes ago).
    fleet.add_member("edge-3", name="edge-3")
    fleet.set_online("edge-3", False)

    def edge(i: int, ts: float) -> list[Result]:
        return [_pct("disk", _curve(35, 5, i), "DISK OK - /: 35% used", "80", "90", ts)]

    _fill(fleet, "edge-3", "edge-3", 10, 10, now - 600, edge)

    # lab: hostile output shown literally, and a spoofed publisher flagged.
    fleet.add_member("lab", name="lab")
    fleet.set_online("lab", True)

    def lab(i: int, ts: float) -> list[Result]:
        return [
            Result(
                test="markup",
                status=Status.WARNING,
                output="[bold red]not bold[/] [link=http://x]click[/link] \x1b[31mred\x1b[0m",
                value=float(i),
                unit="ms",
                ts=ts,
            ),
        ]

    _fill(fleet, "lab", "lab", 10, 12, now - 2, lab)
    fleet.record_spoof("lab", "mallory")
    for device in fleet.devices.values():
        device.known_since = now - 3600
    fleet.set_connection(ConnectionState.CONNECTED, now - 3600)
    fleet.take_changes()
    return fleet
