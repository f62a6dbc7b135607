"""What the dashboard knows about the fleet: plain dataclasses, no Textual, no PubNub.

The screens render from this and the ingest code (`reflex_tui.ingest`) mutates it, so
both can be tested without a terminal or a network, and a test proves this module
imports neither Textual nor the SDK.

Sized for issue 7 (500 devices x 10 tests, 1 h of history in <= 150 MB): each test's
history is a bounded ring of three flat arrays (time, value, status), about 6 KB per
test when full, instead of 360 tuples of boxed floats (about 40 KB). Nothing here grows
without bound: warnings, non-member devices and history are all capped.

Mutations record *what* changed (`Fleet.dirty`, `Fleet.structure_changed`) rather than
notifying anyone; the app repaints at most ~10 times a second from that record, so a
flood of results never becomes a flood of repaints.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Final

from reflex_core.events import ConnectionState
from reflex_core.protocol import Rejection, Result, ResultsMessage, ScriptEntry, StateMessage
from reflex_core.protocol import Status as Status
from reflex_tui.text import one_line

Clock = Callable[[], float]

HISTORY_POINTS: Final = 360
"""Points kept per test: one hour at the default 10 s interval (issue 4: "up to 360")."""
HISTORY_SECONDS: Final = 3600
STALE_INTERVALS: Final = 3
WARNINGS_KEPT: Final = 200
MAX_NON_MEMBERS: Final = 1000
"""Devices seen on `device.*` but not (yet) registered; capped so a flood of made-up
channel names cannot grow the dashboard's memory."""
DEFAULT_INTERVAL: Final = 10

_NO_STATUS: Final = -1
STATUS_ORDER: Final = (Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN)
_SEVERITY: Final = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


def severity(status: Status) -> int:
    """Sort key: critical > warning > unknown > ok."""
    return _SEVERITY[status]


class Ring:
    """A time series of at most `capacity` points, oldest dropped first, kept sorted by time.

    Points normally arrive in time order (`append` is O(1)); backfilled history that is
    older than live points already held goes through `merge`, one O(n) pass per batch.
    """

    __slots__ = ("capacity", "_ts", "_values", "_codes", "_start")

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ts = array("d")
        self._values = array("d")
        self._codes = array("b")
        self._start = 0  # index of the oldest point once the arrays are full

    def __len__(self) -> int:
        return len(self._ts)

    def _index(self, i: int) -> int:
        return (self._start + i) % len(self._ts)

    @property
    def last_ts(self) -> float | None:
        return self._ts[self._index(len(self._ts) - 1)] if self._ts else None

    def append(self, ts: float, value: float | None, code: int) -> None:
        if self._ts and ts < (self.last_ts or 0.0):
            self.merge([(ts, value, code)])
            return
        stored = math.nan if value is None else float(value)
        if len(self._ts) < self.capacity:
            self._ts.append(ts)
            self._values.append(stored)
            self._codes.append(code)
            return
        self._ts[self._start] = ts
        self._values[self._start] = stored
        self._codes[self._start] = code
        self._start = (self._start + 1) % self.capacity

    def merge(self, points: Iterable[tuple[float, float | None, int]]) -> None:
        """Add points in any order; keeps time order and the newest `capacity` points."""
        # Two sorted runs: timsort merges them in one linear pass.
        merged = sorted([*self, *points], key=_point_time)[-self.capacity :]
        self._ts = array("d", (p[0] for p in merged))
        self._values = array("d", (math.nan if p[1] is None else p[1] for p in merged))
        self._codes = array("b", (p[2] for p in merged))
        self._start = 0

    def __iter__(self) -> Iterator[tuple[float, float | None, int]]:
        size = len(self._ts)
        for i in range(size):
            j = (self._start + i) % size
            value = self._values[j]
            yield self._ts[j], (None if math.isnan(value) else value), self._codes[j]

    def values(self, last: int | None = None) -> list[float | None]:
        """The newest `last` values (all if None), oldest first; None where there was none."""
        size = len(self._ts)
        count = size if last is None else min(last, size)
        out: list[float | None] = []
        for i in range(size - count, size):
            value = self._values[(self._start + i) % size]
            out.append(None if math.isnan(value) else value)
        return out

    def since(self, cutoff: float) -> list[tuple[float, float | None, int]]:
        return [point for point in self if point[0] >= cutoff]

    def clear(self) -> None:
        self._ts = array("d")
        self._values = array("d")
        self._codes = array("b")
        self._start = 0


def _point_time(point: tuple[float, float | None, int]) -> float:
    return point[0]


def status_code(status: Status | None) -> int:
    return _NO_STATUS if status is None else status.code


def status_from_code(code: int) -> Status | None:
    return None if code == _NO_STATUS else Status.from_code(code)


@dataclass(slots=True, eq=False)
class TestSeries:
    """One test of one device: its newest result and a bounded history."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    name: str
    last: Result | None = None
    last_at: float | None = None
    history: Ring = field(default_factory=Ring)

    @property
    def status(self) -> Status | None:
        return None if self.last is None else self.last.status

    def add(self, result: Result, at: float) -> None:
        """Record a result observed at `at` (history may arrive after newer live results)."""
        self.history.append(at, result.value, result.status.code)
        if self.last_at is None or at >= self.last_at:
            self.last, self.last_at = result, at

    def transitions(self) -> list[tuple[float, Status]]:
        """(time, status) each time the status changed within the kept history."""
        changes: list[tuple[float, Status]] = []
        previous: int | None = None
        for ts, _value, code in self.history:
            if code != previous and code != _NO_STATUS:
                changes.append((ts, Status.from_code(code)))
                previous = code
        return changes

    def stats(self) -> SeriesStats:
        values = [v for v in self.history.values() if v is not None]
        if not values:
            return SeriesStats(0, None, None, None, None)
        return SeriesStats(
            count=len(values),
            minimum=min(values),
            maximum=max(values),
            average=sum(values) / len(values),
            last=values[-1],
        )


@dataclass(frozen=True, slots=True)
class SeriesStats:
    count: int
    minimum: float | None
    maximum: float | None
    average: float | None
    last: float | None


@dataclass(frozen=True, slots=True)
class SpoofWarning:
    """Messages on `device.<id>` whose publisher was not `<id>`: shown, never used as data."""

    publisher: str | None
    count: int
    at: float


@dataclass(slots=True, eq=False)
class Device:
    """A device as the dashboard knows it.

    Settings exist in three layers, each kept apart so the card can say which is which:
    `configured_*` (uuid metadata `custom`, what should hold even for an offline agent),
    `pending_*` (a change this dashboard or another one asked for, not yet confirmed) and
    the confirmed values from the agent's own `state` (`ignored`, `interval`).
    """

    id: str
    name: str
    member: bool = False
    online: bool = False
    known_since: float = 0.0
    interval: int | None = None
    last_update: float | None = None
    seq: int | None = None
    tests: dict[str, TestSeries] = field(default_factory=dict)
    ignored: tuple[str, ...] | None = None
    state_at: float | None = None
    configured_ignore: tuple[str, ...] | None = None
    configured_interval: int | None = None
    metadata_custom: dict[str, object] | None = None
    pending_ignore: tuple[str, ...] | None = None
    pending_interval: int | None = None
    rejected: tuple[Rejection, ...] = ()
    scripts: tuple[ScriptEntry, ...] = ()
    agent_version: str | None = None
    spoof: SpoofWarning | None = None
    problem: str | None = None
    problem_count: int = 0
    first_live_tt: int | None = None
    history_max_tt: int | None = None
    version: int = 0
    _memo_version: int = field(default=-1, repr=False)
    _memo_active: list[TestSeries] = field(default_factory=list, repr=False)
    _memo_counts: dict[Status, int] = field(default_factory=dict, repr=False)
    _memo_worst: Status | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ derived views

    def effective_ignore(self) -> tuple[str, ...]:
        """The ignore list in force or about to be: pending, else confirmed, else configured."""
        for candidate in (self.pending_ignore, self.ignored, self.configured_ignore):
            if candidate is not None:
                return candidate
        return ()

    def effective_interval(self, default: int = DEFAULT_INTERVAL) -> int:
        for candidate in (self.pending_interval, self.interval, self.configured_interval):
            if candidate is not None:
                return candidate
        return default

    def shown_interval(self, default: int = DEFAULT_INTERVAL) -> int:
        """The interval the agent runs at (what staleness is judged by)."""
        for candidate in (self.interval, self.configured_interval):
            if candidate is not None:
                return candidate
        return default

    def is_stale(self, now: float, default: int = DEFAULT_INTERVAL) -> bool:
        """No results for 3 intervals (counted from the last result, or from when the
        dashboard learned about the device if it never sent one)."""
        reference = self.last_update if self.last_update is not None else self.known_since
        return now - reference > STALE_INTERVALS * self.shown_interval(default)

    def _memo(self) -> None:
        """Derived views, recomputed once per change (`version`), not once per reader:
        the header, every card and the filter all ask for them at each repaint."""
        if self._memo_version == self.version:
            return
        ignored = set(self.effective_ignore())
        active = [
            self.tests[name]
            for name in sorted(self.tests)
            if name not in ignored and self.tests[name].last is not None
        ]
        counts = dict.fromkeys(STATUS_ORDER, 0)
        worst: Status | None = None
        for series in active:
            status = series.status
            if status is None:
                continue
            counts[status] += 1
            if worst is None or severity(status) > severity(worst):
                worst = status
        self._memo_active, self._memo_counts, self._memo_worst = active, counts, worst
        self._memo_version = self.version

    def active_tests(self) -> list[TestSeries]:
        """Tests with results that are not ignored, by name."""
        self._memo()
        return self._memo_active

    def disabled_tests(self) -> list[str]:
        return sorted(self.effective_ignore())

    def selectable_tests(self) -> list[str]:
        """Rows the cursor can stop on: active tests, then disabled ones (to re-enable)."""
        return [t.name for t in self.active_tests()] + self.disabled_tests()

    def is_pending_test(self, test: str) -> bool:
        """The test's ignore/enable change has not been confirmed by the agent yet."""
        if self.pending_ignore is None:
            return False
        confirmed = set(self.ignored or ())
        return (test in self.pending_ignore) != (test in confirmed)

    def worst_status(self) -> Status | None:
        self._memo()
        return self._memo_worst

    def status_counts(self) -> dict[Status, int]:
        self._memo()
        return self._memo_counts

    def touch(self) -> None:
        self.version += 1

    # ------------------------------------------------------------------ mutations

    def apply_results(self, message: ResultsMessage, received_at: float) -> None:
        """One round from the agent (already attributed to this device by channel)."""
        newer = self.last_update is None or received_at >= self.last_update
        for result in message.results:
            series = self.tests.get(result.test)
            if series is None:
                series = self.tests[result.test] = TestSeries(result.test)
            at = result.ts if result.ts > 0 else (message.ts if message.ts > 0 else received_at)
            series.add(result, at)
        if newer:
            self.last_update = received_at
            self.interval = message.interval
            self.seq = message.seq
            if message.host and self.name == self.id:
                self.name = one_line(message.host, max_chars=255)
        self.touch()

    def apply_results_batch(self, batch: list[tuple[ResultsMessage, float]]) -> None:
        """Many rounds at once (backfilled history): one merge per test instead of one
        out-of-order insert per point, which matters when live results arrived first."""
        points: dict[str, list[tuple[float, float | None, int]]] = {}
        newest: dict[str, tuple[float, Result]] = {}
        latest: tuple[float, ResultsMessage] | None = None
        for message, received_at in batch:
            if latest is None or received_at >= latest[0]:
                latest = (received_at, message)
            for result in message.results:
                at = result.ts if result.ts > 0 else (message.ts if message.ts > 0 else received_at)
                points.setdefault(result.test, []).append((at, result.value, result.status.code))
                seen = newest.get(result.test)
                if seen is None or at >= seen[0]:
                    newest[result.test] = (at, result)
        for name, series_points in points.items():
            series = self.tests.get(name)
            if series is None:
                series = self.tests[name] = TestSeries(name)
            series.history.merge(series_points)
            at, result = newest[name]
            if series.last_at is None or at >= series.last_at:
                series.last, series.last_at = result, at
        if latest is not None and (self.last_update is None or latest[0] >= self.last_update):
            received_at, message = latest
            self.last_update = received_at
            self.interval = message.interval
            self.seq = message.seq
            if message.host and self.name == self.id:
                self.name = one_line(message.host, max_chars=255)
        self.touch()

    def apply_state(self, message: StateMessage, received_at: float) -> None:
        """The agent's confirmed settings; clears pending changes they match."""
        if self.state_at is not None and received_at < self.state_at:
            return  # older than what we have (backfill after live)
        self.state_at = received_at
        self.ignored = tuple(sorted(message.ignored))
        self.interval = message.interval
        self.rejected = message.rejected
        self.scripts = message.scripts
        self.agent_version = message.agent_version
        if self.pending_ignore is not None and set(self.pending_ignore) == set(message.ignored):
            self.pending_ignore = None
        if self.pending_interval is not None and self.pending_interval == message.interval:
            self.pending_interval = None
        if self.name == self.id and message.host:
            self.name = one_line(message.host, max_chars=255)
        self.touch()

    def apply_settings(
        self, ignore: tuple[str, ...] | None, interval: int | None, *, pending: bool
    ) -> None:
        """Settings from uuid metadata, or a change asked for (`pending=True`)."""
        if ignore is not None:
            ignore = tuple(sorted(set(ignore)))
            self.configured_ignore = ignore
            if pending and (self.ignored is None or set(ignore) != set(self.ignored)):
                self.pending_ignore = ignore
            elif pending:
                self.pending_ignore = None
        if interval is not None:
            self.configured_interval = interval
            if pending and interval != self.interval:
                self.pending_interval = interval
            elif pending:
                self.pending_interval = None
        self.touch()


@dataclass(frozen=True, slots=True)
class FleetWarning:
    at: float
    device_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Connection:
    state: ConnectionState = ConnectionState.DISCONNECTED
    since: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FleetCounts:
    devices: int
    online: int
    stale: int
    by_status: dict[Status, int]


@dataclass(slots=True, eq=False)
class Fleet:
    """Every device, presence, connection and warnings; the dashboard's single source of truth.

    `clock` is injected so tests and snapshots freeze time. Mutating methods record what
    changed in `dirty` / `structure_changed`; `take_changes()` hands that to the repaint.
    """

    clock: Clock = time.time
    default_interval: int = DEFAULT_INTERVAL
    membership_channel: str = "availability_monitor"
    hub_url: str | None = None
    local_hub: bool = False
    hub_embedded: bool = False
    """The dashboard started this hub itself (nothing answered at the local address)."""
    devices: dict[str, Device] = field(default_factory=dict)
    online: set[str] = field(default_factory=set)
    connection: Connection = field(default_factory=Connection)
    loading: str | None = None
    warnings: deque[FleetWarning] = field(default_factory=lambda: deque(maxlen=WARNINGS_KEPT))
    dirty: set[str] = field(default_factory=set)
    structure_changed: bool = False
    header_changed: bool = False
    _stale: set[str] = field(default_factory=set)
    _order: list[str] | None = None

    # ------------------------------------------------------------------ reading

    def members(self) -> list[Device]:
        """Registered devices in display order (name, then id)."""
        if self._order is None:
            self._order = sorted(
                (d.id for d in self.devices.values() if d.member),
                key=lambda ident: (self.devices[ident].name.casefold(), ident),
            )
        return [self.devices[ident] for ident in self._order]

    def get(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def is_stale(self, device: Device, now: float | None = None) -> bool:
        return device.is_stale(self.clock() if now is None else now, self.default_interval)

    def counts(self) -> FleetCounts:
        now = self.clock()
        members = self.members()
        by_status = dict.fromkeys(STATUS_ORDER, 0)
        online = stale = 0
        for device in members:
            online += device.online
            stale += device.is_stale(now, self.default_interval)
            for status, count in device.status_counts().items():
                by_status[status] += count
        return FleetCounts(len(members), online, stale, by_status)

    # ------------------------------------------------------------------ change tracking

    def mark(self, device_id: str | None = None, *, structure: bool = False) -> None:
        if device_id is not None:
            self.dirty.add(device_id)
        if structure:
            self.structure_changed = True
            self._order = None
        self.header_changed = True

    def take_changes(self) -> tuple[set[str], bool]:
        """Device ids changed and whether cards were added/removed, since the last call."""
        dirty, structure = self.dirty, self.structure_changed
        self.dirty, self.structure_changed, self.header_changed = set(), False, False
        return dirty, structure

    @property
    def has_changes(self) -> bool:
        return bool(self.dirty) or self.structure_changed or self.header_changed

    def check_stale(self) -> set[str]:
        """Re-evaluate staleness (time passes without events); marks and returns changes."""
        now = self.clock()
        stale = {
            d.id
            for d in self.devices.values()
            if d.member and d.is_stale(now, self.default_interval)
        }
        changed = stale ^ self._stale
        self._stale = stale
        for ident in changed:
            self.mark(ident)
        return changed

    # ------------------------------------------------------------------ mutations

    def ensure(self, device_id: str, name: str | None = None) -> Device:
        """The device with this id, created (as a non-member) if unknown."""
        device = self.devices.get(device_id)
        if device is None:
            self._evict_non_members()
            device = Device(
                id=device_id,
                name=name or device_id,
                online=device_id in self.online,
                known_since=self.clock(),
            )
            self.devices[device_id] = device
        elif name and device.name == device.id:
            device.name = name
            self._order = None
        return device

    def _evict_non_members(self) -> None:
        outsiders = [d for d in self.devices.values() if not d.member]
        if len(outsiders) < MAX_NON_MEMBERS:
            return
        oldest = min(outsiders, key=lambda d: d.last_update or d.known_since)
        del self.devices[oldest.id]

    def add_member(
        self,
        device_id: str,
        *,
        name: str | None = None,
        custom: dict[str, object] | None = None,
        settings: tuple[tuple[str, ...] | None, int | None] | None = None,
    ) -> Device:
        device = self.ensure(device_id, name)
        if name:
            device.name = name
        if not device.member:
            device.member = True
            device.known_since = self.clock()
        if custom is not None:
            device.metadata_custom = dict(custom)
        if settings is not None:
            device.apply_settings(*settings, pending=False)
        device.touch()
        self.mark(device_id, structure=True)
        return device

    def remove_member(self, device_id: str) -> None:
        if self.devices.pop(device_id, None) is not None:
            self._stale.discard(device_id)
            self.mark(device_id, structure=True)

    def set_online(self, device_id: str, online: bool) -> None:
        if online:
            self.online.add(device_id)
        else:
            self.online.discard(device_id)
        device = self.devices.get(device_id)
        if device is not None and device.online != online:
            device.online = online
            device.touch()
            self.mark(device_id)

    def set_present(self, device_ids: Iterable[str]) -> None:
        """The complete set of online devices (here_now at start)."""
        self.online = set(device_ids)
        for device in self.devices.values():
            self.set_online(device.id, device.id in self.online)
        self.header_changed = True

    def set_connection(self, state: ConnectionState, since: float, detail: str = "") -> None:
        self.connection = Connection(state, since, detail)
        self.header_changed = True

    def set_loading(self, text: str | None) -> None:
        self.loading = text
        self.header_changed = True

    def warn(self, device_id: str | None, text: str) -> FleetWarning:
        warning = FleetWarning(self.clock(), device_id, text)
        self.warnings.append(warning)
        self.header_changed = True
        return warning

    def record_spoof(self, device_id: str, publisher: str | None) -> bool:
        """A message on `device.<id>` from someone else. Returns True the first time this
        publisher is seen spoofing this device (the moment worth a notification)."""
        device = self.devices.get(device_id)
        if device is None:
            self.warn(device_id, f"message on device.{device_id} from {publisher!r} ignored")
            return True
        first = device.spoof is None or device.spoof.publisher != publisher
        count = 1 if first or device.spoof is None else device.spoof.count + 1
        device.spoof = SpoofWarning(publisher, count, self.clock())
        device.touch()
        self.mark(device_id)
        if first:
            self.warn(
                device_id,
                f"messages on device.{device_id} published by {publisher!r} are not "
                f"from {device_id}: ignored",
            )
        return first

    def record_problem(self, device_id: str, text: str) -> None:
        device = self.devices.get(device_id)
        if device is None:
            self.warn(device_id, text)
            return
        first = device.problem is None
        device.problem = text
        device.problem_count += 1
        device.touch()
        self.mark(device_id)
        if first:
            self.warn(device_id, text)


_FILTER_WORDS: Final = {
    "ok": "ok",
    "warn": "warning",
    "warning": "warning",
    "crit": "critical",
    "critical": "critical",
    "unkn": "unknown",
    "unknown": "unknown",
}


def device_matches(device: Device, query: str, now: float, default_interval: int) -> bool:
    """The `/` filter: every word must match the name or id (substring, any case) or a
    status the device has: ok/warn/crit/unkn (any test), online, offline, stale, pending,
    rejected."""
    for word in query.casefold().split():
        if word in device.name.casefold() or word in device.id:
            continue
        status = _FILTER_WORDS.get(word)
        if status is not None and any(
            t.status is not None and t.status.value == status for t in device.active_tests()
        ):
            continue
        if word == "online" and device.online:
            continue
        if word == "offline" and not device.online:
            continue
        if word == "stale" and device.is_stale(now, default_interval):
            continue
        if word == "pending" and (
            device.pending_ignore is not None or device.pending_interval is not None
        ):
            continue
        if word == "rejected" and device.rejected:
            continue
        return False
    return True


__all__ = [
    "device_matches",
    "DEFAULT_INTERVAL",
    "HISTORY_POINTS",
    "HISTORY_SECONDS",
    "STALE_INTERVALS",
    "STATUS_ORDER",
    "Clock",
    "Connection",
    "Device",
    "Fleet",
    "FleetCounts",
    "FleetWarning",
    "Ring",
    "SeriesStats",
    "SpoofWarning",
    "Status",
    "TestSeries",
    "severity",
    "status_code",
    "status_from_code",
]
