"""Wire protocol v1: the only place that builds or reads Reflex messages.

Every message is a JSON object with `"v": 1` and a `"kind"`. Agents, the
dashboard and the tests all go through the dataclasses below, so a message that
one side can build is exactly a message the other side accepts. See
`docs/PROTOCOL.md` for the human-readable contract.

Design rules, each with its reason:

- Constructors validate (`__post_init__`), so no code path can emit a message
  the parser would refuse, and parsing is "coerce JSON shapes, then construct".
- Parsing assumes hostile input: anything malformed raises `ProtocolError`
  (a `ValueError`) with a short reason naming the field; no other exception
  escapes, whatever JSON value is passed in.
- Unknown *fields* are ignored (additive changes stay compatible within v1);
  an unknown `v` or `kind` is refused.
- Size is bounded: PubNub refuses messages over 32 KiB, so text is truncated
  with a visible marker and `fit_results` / `fit_state` shrink a message under
  the budget instead of letting a publish fail or silently dropping results.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar, Final, NoReturn, TypeAlias, TypeVar

from reflex_core import __version__
from reflex_core.ids import (
    ALL_DEVICES,
    DEVICE_CHANNEL_PREFIX,
    DEVICE_WILDCARD,
    MAX_DEVICE_ID_CHARS,
    MAX_IGNORE_BYTES,
    MAX_IGNORE_NAMES,
    MAX_TEST_NAME_CHARS,
    ProtocolError,
    device_channel,
    device_id,
    device_id_from_channel,
    is_device_id,
    is_test_name,
    normalize_ignore_list,
    normalize_test_name,
    split_names,
    test_name,
    test_name_problem,
)
from reflex_core.ids import short_repr as _describe

PROTOCOL_VERSION: Final = 1
AGENT_VERSION: Final = __version__

# --- limits ---------------------------------------------------------------------------------
#: Budget for one message as the SDK sends it (PubNub's hard cap is 32 KiB).
MAX_MESSAGE_BYTES: Final = 30 * 1024
#: Plaintext budget when `cipher_key` is set: the SDK publishes base64(IV + AES-CBC(json)),
#: about 4/3 of the plaintext, and 22 KiB of plaintext stays under 30 KiB once encrypted.
MAX_ENCRYPTED_MESSAGE_BYTES: Final = 22 * 1024
#: `decode_json` refuses raw input larger than this before parsing it.
MAX_RAW_BYTES: Final = 64 * 1024
MAX_OUTPUT_CHARS: Final = 512
MAX_LONG_OUTPUT_CHARS: Final = 4096
TRUNCATION_MARKER: Final = "…[truncated]"
MAX_HOST_CHARS: Final = 255
MAX_RESULTS: Final = 1024
MAX_PERF: Final = 64
MAX_SCRIPTS: Final = 1024
MAX_REJECTED: Final = 1024
MAX_FILE_CHARS: Final = 1024
MAX_REASON_CHARS: Final = 512
MIN_INTERVAL: Final = 1
MAX_INTERVAL: Final = 86_400

_T = TypeVar("_T")
_MAX_SAFE_INT: Final = 2**53  # what every JSON implementation can carry exactly

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_THRESHOLD_RE = re.compile(r"[0-9.:~@+eE-]{0,32}")


# --- status ---------------------------------------------------------------------------------
class Status(StrEnum):
    """Check status, following the Monitoring Plugins exit-code convention."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def code(self) -> int:
        return _CODE_BY_STATUS[self]

    @classmethod
    def from_code(cls, code: int) -> Status:
        """0 ok, 1 warning, 2 critical, 3 unknown; anything else (137, -9) is unknown."""
        return _STATUS_BY_CODE.get(code, cls.UNKNOWN) if type(code) is int else cls.UNKNOWN


_STATUS_BY_CODE: Final = {0: Status.OK, 1: Status.WARNING, 2: Status.CRITICAL, 3: Status.UNKNOWN}
_CODE_BY_STATUS: Final = {status: code for code, status in _STATUS_BY_CODE.items()}


class RejectReason(StrEnum):
    """Categories for `state.rejected[].reason`, which reads `<category>: <detail>`.

    The dashboard shows the whole text; the category lets it group or test them.
    """

    BAD_NAME = "bad name"
    TOO_LARGE = "too large"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad signature"
    UNTRUSTED_KEY = "untrusted key"
    ROLLBACK = "rollback"


# --- small validators (shared by constructors and parsers) ----------------------------------
def _fail(where: str, reason: str) -> NoReturn:
    raise ProtocolError(f"{where}: {reason}" if where else reason)


class _at:  # noqa: N801 -- used like the function it replaced: `with _at("perf", i):`
    """Prefix errors raised inside with a field path (`results[2].perf[0].value: ...`).

    A class, and the path formatted only on error: the dashboard's backfill enters one of
    these per result and per perf item (hundreds of thousands for a big fleet), and a
    generator-based context manager plus an f-string each time was ~5 % of that parse.
    """

    __slots__ = ("_index", "_name")

    def __init__(self, name: str, index: int) -> None:
        self._name = name
        self._index = index

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, ProtocolError):
            raise ProtocolError(f"{self._name}[{self._index}].{exc}") from None


def _int(value: object, where: str, lo: int, hi: int) -> int:
    # type() not isinstance(): bool is an int subclass and `true` must not pass as 1.
    if type(value) is not int:
        _fail(where, f"expected a whole number from {lo} to {hi}, got {_describe(value)}")
    if not lo <= value <= hi:
        _fail(where, f"expected a whole number from {lo} to {hi}, got {_describe(value)}")
    return value


def _num(value: object, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            _fail(where, "number out of range")
    elif type(value) is float:
        number = value
    else:
        _fail(where, f"expected a number, got {_describe(value)}")
    if not math.isfinite(number):
        _fail(where, f"expected a finite number, got {_describe(value)}")
    if not lo <= number <= hi:
        _fail(where, f"expected a number from {lo:g} to {hi:g}, got {_describe(value)}")
    return number


def _opt_num(value: object, where: str) -> float | None:
    return None if value is None else _num(value, where)


def _clean_text(text: str) -> str:
    """Replace lone surrogates (legal in JSON escapes, unencodable in UTF-8)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _str(
    value: object, where: str, max_chars: int, *, min_chars: int = 0, one_line: bool = False
) -> str:
    if type(value) is not str:
        _fail(where, f"expected a string, got {_describe(value)}")
    if len(value) > max_chars:
        _fail(where, f"longer than {max_chars} characters")
    if len(value) < min_chars:
        _fail(where, "must not be empty")
    if one_line and ("\n" in value or "\r" in value):
        _fail(where, "must be a single line")
    return _clean_text(value)


def _tuple(value: object, where: str, max_items: int) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        _fail(where, f"expected a list, got {_describe(value)}")
    if len(value) > max_items:
        _fail(where, f"more than {max_items} entries")
    return tuple(value)


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        _fail(where, f"expected a JSON object, got {_describe(value)}")
    return value


_MISSING: Final = object()


def _req(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        _fail("", f"missing field '{key}'")
    return value


def _device_id_field(value: object, where: str) -> str:
    if not is_device_id(value):
        _fail(where, f"expected a device id ([a-z0-9_-], 1-64 chars), got {_describe(value)}")
    return value  # type: ignore[return-value]


def _target(value: object, where: str = "target") -> str:
    if value == ALL_DEVICES and type(value) is str:
        return ALL_DEVICES
    if not is_device_id(value):
        _fail(where, f"expected a device id or '*', got {_describe(value)}")
    return value  # type: ignore[return-value]


# --- text -----------------------------------------------------------------------------------
def truncate_text(text: str, max_chars: int) -> str:
    """Cut `text` to at most `max_chars`, ending in TRUNCATION_MARKER when cut.

    A cut never happens silently: even a limit shorter than the marker yields
    the marker itself, so the reader knows something was there.
    """
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - len(TRUNCATION_MARKER))
    return text[:keep] + TRUNCATION_MARKER


def _threshold(value: object, where: str) -> str | None:
    if value is None:
        return None
    if type(value) is int or type(value) is float:  # a bare number is a valid range
        return _format_number(_num(value, where))
    text = _str(value, where, 32)
    if not _THRESHOLD_RE.fullmatch(text):
        _fail(where, f"expected a Monitoring Plugins range like '80' or '@10:20', got {text!r}")
    return text or None


def _format_number(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


# --- messages -------------------------------------------------------------------------------
class _Wire:
    """Behaviour shared by every message type."""

    __slots__ = ()
    kind: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        """Compact JSON; publish `to_wire()` (a dict) instead, the SDK serializes it."""
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Perf:
    """One perfdata item: `'label'=value[UOM];[warn];[crit];[min];[max]`.

    `warn`/`crit` keep the plugin's range text (`"80"`, `"10:"`, `"@5:10"`)
    because a bare number cannot express inside/outside ranges.
    """

    label: str
    value: float | None = None
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        _set(self, "label", _str(self.label, "label", 128, min_chars=1, one_line=True))
        _set(self, "value", _opt_num(self.value, "value"))
        _set(self, "uom", _str(self.uom, "uom", 16, one_line=True))
        _set(self, "warn", _threshold(self.warn, "warn"))
        _set(self, "crit", _threshold(self.crit, "crit"))
        _set(self, "min", _opt_num(self.min, "min"))
        _set(self, "max", _opt_num(self.max, "max"))

    def to_wire(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "uom": self.uom,
            "warn": self.warn,
            "crit": self.crit,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_wire(cls, obj: object) -> Perf:
        data = _obj(obj, "")
        return cls(
            label=_req(data, "label"),
            value=data.get("value"),
            uom=data.get("uom", ""),
            warn=data.get("warn"),
            crit=data.get("crit"),
            min=data.get("min"),
            max=data.get("max"),
        )


@dataclass(frozen=True, slots=True)
class Result:
    """One check run. `code` is derived from `status`, so the two cannot disagree.

    `long_output` (lines after the first) and `truncated` are optional on the
    wire; `truncated` says `fit_results` cut this result's perf list or text.
    """

    test: str
    status: Status
    output: str = ""
    value: float | None = None
    unit: str = ""
    perf: tuple[Perf, ...] = ()
    duration_ms: int = 0
    ts: float = 0.0
    long_output: str = ""
    truncated: bool = False

    def __post_init__(self) -> None:
        _set(self, "test", _test_field(self.test))
        _set(self, "status", _status_field(self.status))
        _set(self, "output", _str(self.output, "output", MAX_OUTPUT_CHARS, one_line=True))
        _set(self, "value", _opt_num(self.value, "value"))
        _set(self, "unit", _str(self.unit, "unit", 16, one_line=True))
        perf = _tuple(self.perf, "perf", MAX_PERF)
        for index, item in enumerate(perf):
            if not isinstance(item, Perf):
                _fail(f"perf[{index}]", f"expected Perf, got {_describe(item)}")
        _set(self, "perf", perf)
        _set(self, "duration_ms", _int(self.duration_ms, "duration_ms", 0, _MAX_SAFE_INT))
        _set(self, "ts", _num(self.ts, "ts", 0))
        _set(self, "long_output", _str(self.long_output, "long_output", MAX_LONG_OUTPUT_CHARS))
        if type(self.truncated) is not bool:
            _fail("truncated", f"expected true or false, got {_describe(self.truncated)}")

    @property
    def code(self) -> int:
        return self.status.code

    @classmethod
    def build(
        cls,
        test: str,
        status: Status | str,
        output: str,
        *,
        long_output: str = "",
        value: float | None = None,
        unit: str = "",
        perf: Iterable[Perf] = (),
        duration_ms: int = 0,
        ts: float = 0.0,
    ) -> Result:
        """Build from raw script text: first line -> `output`, the rest -> `long_output`,
        both truncated with TRUNCATION_MARKER, and the test name normalized."""
        first, sep, rest = output.replace("\r\n", "\n").replace("\r", "\n").partition("\n")
        extra = rest if sep else ""
        if long_output:
            extra = f"{extra}\n{long_output}" if extra else long_output
        perf_items = tuple(perf)
        return cls(
            test=normalize_test_name(test),
            status=status,  # type: ignore[arg-type]  # coerced and checked in __post_init__
            output=truncate_text(first.strip(), MAX_OUTPUT_CHARS),
            value=value,
            unit=truncate_text(unit, 16),
            perf=perf_items[:MAX_PERF],
            duration_ms=duration_ms,
            ts=ts,
            long_output=truncate_text(extra.strip("\n"), MAX_LONG_OUTPUT_CHARS),
            truncated=len(perf_items) > MAX_PERF,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "test": self.test,
            "status": self.status.value,
            "code": self.code,
            "output": self.output,
            "value": self.value,
            "unit": self.unit,
            "perf": [item.to_wire() for item in self.perf],
            "duration_ms": self.duration_ms,
            "ts": self.ts,
        }
        if self.long_output:
            wire["long_output"] = self.long_output
        if self.truncated:
            wire["truncated"] = True
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> Result:
        data = _obj(obj, "")
        status = _status_field(_req(data, "status"))
        code = _int(_req(data, "code"), "code", 0, 3)
        if code != status.code:
            _fail("code", f"{code} does not match status '{status}'")
        perf_items = []
        for index, item in enumerate(_tuple(data.get("perf", []), "perf", MAX_PERF)):
            with _at("perf", index):
                perf_items.append(Perf.from_wire(item))
        return cls(
            test=normalize_test_name(_req(data, "test")),
            status=status,
            output=_req(data, "output"),
            value=data.get("value"),
            unit=data.get("unit", ""),
            perf=tuple(perf_items),
            duration_ms=data.get("duration_ms", 0),
            ts=_req(data, "ts"),
            long_output=data.get("long_output", ""),
            truncated=data.get("truncated", False),
        )


def _test_field(value: object) -> str:
    try:
        return normalize_test_name(value)
    except ProtocolError as exc:
        raise ProtocolError(f"test: {exc}") from None


def _status_field(value: object) -> Status:
    if isinstance(value, Status):
        return value
    if type(value) is str:
        try:
            return Status(value)
        except ValueError:
            pass
    _fail("status", f"expected ok, warning, critical or unknown, got {_describe(value)}")


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses: constructors normalize fields (list -> tuple, int -> float).
    object.__setattr__(obj, name, value)


def _check_version(obj: Mapping[str, Any]) -> None:
    version = obj.get("v", _MISSING)
    if version is _MISSING:
        _fail("", "missing field 'v'")
    if type(version) is not int or version != PROTOCOL_VERSION:
        _fail("v", f"unsupported protocol version {_describe(version)} (this is v1)")


def _check_header(obj: Mapping[str, Any], kind: str) -> None:
    _check_version(obj)
    if obj.get("kind") != kind:
        _fail("kind", f"expected '{kind}'")


def _host(value: object) -> str:
    return _str(value, "host", MAX_HOST_CHARS, min_chars=1)


@dataclass(frozen=True, slots=True)
class ResultsMessage(_Wire):
    """One round of checks from one agent, published on `device.<id>`."""

    host: str
    id: str
    seq: int
    ts: float
    interval: int
    results: tuple[Result, ...] = ()
    kind: ClassVar[str] = "results"

    def __post_init__(self) -> None:
        _set(self, "host", _host(self.host))
        _device_id_field(self.id, "id")
        _int(self.seq, "seq", 0, _MAX_SAFE_INT)
        _set(self, "ts", _num(self.ts, "ts", 0))
        _int(self.interval, "interval", MIN_INTERVAL, MAX_INTERVAL)
        results = _tuple(self.results, "results", MAX_RESULTS)
        for index, item in enumerate(results):
            if not isinstance(item, Result):
                _fail(f"results[{index}]", f"expected Result, got {_describe(item)}")
        _set(self, "results", results)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.kind,
            "host": self.host,
            "id": self.id,
            "seq": self.seq,
            "ts": self.ts,
            "interval": self.interval,
            "results": [item.to_wire() for item in self.results],
        }

    @classmethod
    def from_wire(cls, obj: object) -> ResultsMessage:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        results = []
        for index, item in enumerate(_tuple(_req(data, "results"), "results", MAX_RESULTS)):
            with _at("results", index):
                results.append(Result.from_wire(item))
        return cls(
            host=_req(data, "host"),
            id=_req(data, "id"),
            seq=_req(data, "seq"),
            ts=_req(data, "ts"),
            interval=_req(data, "interval"),
            results=tuple(results),
        )


@dataclass(frozen=True, slots=True)
class ScriptEntry:
    """A script the agent runs: test name, file name, sha256 of its bytes."""

    test: str
    file: str
    sha256: str

    def __post_init__(self) -> None:
        _set(self, "test", _test_field(self.test))
        _set(self, "file", _str(self.file, "file", MAX_FILE_CHARS, min_chars=1))
        if type(self.sha256) is not str or not _SHA256_RE.fullmatch(self.sha256):
            _fail("sha256", f"expected 64 lowercase hex digits, got {_describe(self.sha256)}")

    def to_wire(self) -> dict[str, Any]:
        return {"test": self.test, "file": self.file, "sha256": self.sha256}

    @classmethod
    def from_wire(cls, obj: object) -> ScriptEntry:
        data = _obj(obj, "")
        return cls(test=_req(data, "test"), file=_req(data, "file"), sha256=_req(data, "sha256"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A file the agent refused. `file` is shown as received, hostile names included."""

    file: str
    reason: str

    def __post_init__(self) -> None:
        _set(self, "file", _str(self.file, "file", MAX_FILE_CHARS))
        _set(self, "reason", _str(self.reason, "reason", MAX_REASON_CHARS, min_chars=1))

    @classmethod
    def build(cls, file: str, reason: str) -> Rejection:
        """Like the constructor, but truncates an over-long hostile name or reason."""
        return cls(truncate_text(file, MAX_FILE_CHARS), truncate_text(reason, MAX_REASON_CHARS))

    def to_wire(self) -> dict[str, Any]:
        return {"file": self.file, "reason": self.reason}

    @classmethod
    def from_wire(cls, obj: object) -> Rejection:
        data = _obj(obj, "")
        return cls(file=_req(data, "file"), reason=_req(data, "reason"))


@dataclass(frozen=True, slots=True)
class StateMessage(_Wire):
    """What an agent is doing: settings, scripts and refusals, on `device.<id>`.

    `omitted` counts script/rejected entries `fit_state` left out to respect the
    size cap (absent on the wire when 0).
    """

    host: str
    id: str
    ts: float
    interval: int
    ignored: tuple[str, ...] = ()
    scripts: tuple[ScriptEntry, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    agent_version: str = AGENT_VERSION
    omitted: int = 0
    kind: ClassVar[str] = "state"

    def __post_init__(self) -> None:
        _set(self, "host", _host(self.host))
        _device_id_field(self.id, "id")
        _set(self, "ts", _num(self.ts, "ts", 0))
        _int(self.interval, "interval", MIN_INTERVAL, MAX_INTERVAL)
        _set(self, "ignored", normalize_ignore_list(self.ignored, "ignored"))
        _set(self, "scripts", _typed_tuple(self.scripts, "scripts", MAX_SCRIPTS, ScriptEntry))
        _set(self, "rejected", _typed_tuple(self.rejected, "rejected", MAX_REJECTED, Rejection))
        _set(self, "agent_version", _str(self.agent_version, "agent_version", 64, one_line=True))
        _int(self.omitted, "omitted", 0, _MAX_SAFE_INT)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "kind": self.kind,
            "host": self.host,
            "id": self.id,
            "ts": self.ts,
            "interval": self.interval,
            "ignored": list(self.ignored),
            "scripts": [item.to_wire() for item in self.scripts],
            "rejected": [item.to_wire() for item in self.rejected],
            "agent_version": self.agent_version,
        }
        if self.omitted:
            wire["omitted"] = self.omitted
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> StateMessage:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        scripts = _parse_items(data.get("scripts", []), "scripts", MAX_SCRIPTS, ScriptEntry)
        rejected = _parse_items(data.get("rejected", []), "rejected", MAX_REJECTED, Rejection)
        return cls(
            host=_req(data, "host"),
            id=_req(data, "id"),
            ts=_req(data, "ts"),
            interval=_req(data, "interval"),
            ignored=data.get("ignored", []),
            scripts=scripts,
            rejected=rejected,
            agent_version=_req(data, "agent_version"),
            omitted=data.get("omitted", 0),
        )


def _typed_tuple(value: object, where: str, max_items: int, kind: type) -> tuple[Any, ...]:
    items = _tuple(value, where, max_items)
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            _fail(f"{where}[{index}]", f"expected {kind.__name__}, got {_describe(item)}")
    return items


def _parse_items(value: object, where: str, max_items: int, kind: Any) -> tuple[Any, ...]:
    parsed = []
    for index, item in enumerate(_tuple(value, where, max_items)):
        with _at(where, index):
            parsed.append(kind.from_wire(item))
    return tuple(parsed)


# --- commands (dashboard -> ignore_chan) ----------------------------------------------------
class _Command(_Wire):
    __slots__ = ()
    target: str

    def applies_to(self, ident: str) -> bool:
        """True if this device (by id) must act on the command."""
        return self.target == ALL_DEVICES or self.target == ident

    def _head(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "kind": self.kind, "target": self.target}


@dataclass(frozen=True, slots=True)
class SetIgnore(_Command):
    """Replace the device's ignore list with `ignore` (the full list, not a delta)."""

    target: str
    ignore: tuple[str, ...] = ()
    kind: ClassVar[str] = "set_ignore"

    def __post_init__(self) -> None:
        _target(self.target)
        _set(self, "ignore", normalize_ignore_list(self.ignore, "ignore"))

    def to_wire(self) -> dict[str, Any]:
        return {**self._head(), "ignore": list(self.ignore)}

    @classmethod
    def from_wire(cls, obj: object) -> SetIgnore:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        return cls(target=_req(data, "target"), ignore=_req(data, "ignore"))


@dataclass(frozen=True, slots=True)
class Refresh(_Command):
    """Publish `state` and run every script now."""

    target: str
    kind: ClassVar[str] = "refresh"

    def __post_init__(self) -> None:
        _target(self.target)

    def to_wire(self) -> dict[str, Any]:
        return self._head()

    @classmethod
    def from_wire(cls, obj: object) -> Refresh:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        return cls(target=_req(data, "target"))


@dataclass(frozen=True, slots=True)
class SetInterval(_Command):
    """Change the round interval (seconds, 1..86400) at once."""

    target: str
    interval: int
    kind: ClassVar[str] = "set_interval"

    def __post_init__(self) -> None:
        _target(self.target)
        _int(self.interval, "interval", MIN_INTERVAL, MAX_INTERVAL)

    def to_wire(self) -> dict[str, Any]:
        return {**self._head(), "interval": self.interval}

    @classmethod
    def from_wire(cls, obj: object) -> SetInterval:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        return cls(target=_req(data, "target"), interval=_req(data, "interval"))


@dataclass(frozen=True, slots=True)
class RunNow(_Command):
    """Run one test (`test`) or, when `test` is None, every test now."""

    target: str
    test: str | None = None
    kind: ClassVar[str] = "run_now"

    def __post_init__(self) -> None:
        _target(self.target)
        if self.test is not None:
            _set(self, "test", _test_field(self.test))

    def to_wire(self) -> dict[str, Any]:
        wire = self._head()
        if self.test is not None:
            wire["test"] = self.test
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> RunNow:
        data = _obj(obj, "")
        _check_header(data, cls.kind)
        return cls(target=_req(data, "target"), test=data.get("test"))


Command: TypeAlias = SetIgnore | Refresh | SetInterval | RunNow
DeviceMessage: TypeAlias = ResultsMessage | StateMessage
Message: TypeAlias = ResultsMessage | StateMessage | SetIgnore | Refresh | SetInterval | RunNow

_COMMANDS: Final[dict[str, Callable[[object], Command]]] = {
    cls.kind: cls.from_wire for cls in (SetIgnore, Refresh, SetInterval, RunNow)
}
_DEVICE_MESSAGES: Final[dict[str, Callable[[object], DeviceMessage]]] = {
    cls.kind: cls.from_wire for cls in (ResultsMessage, StateMessage)
}


def _dispatch(obj: object, table: Mapping[str, Callable[[object], _T]], what: str) -> _T:
    data = _obj(obj, "")
    _check_version(data)  # before the kind: a v2 message gets "unsupported version"
    kind = data.get("kind", _MISSING)
    if kind is _MISSING:
        _fail("", "missing field 'kind'")
    parser = table.get(kind) if type(kind) is str else None
    if parser is None:
        _fail("kind", f"unknown {what} kind {_describe(kind)}")
    return parser(data)


def _parse_legacy_command(data: Mapping[str, Any]) -> Command:
    """The seed dashboard's shapes: `{"host": h, "ignore": "A, B"}` and
    `{"host": h, "command": "refresh"}`. `host` may be a host name or an id."""
    host = _req(data, "host")
    if type(host) is not str:
        _fail("host", f"expected a string, got {_describe(host)}")
    if len(host) > MAX_HOST_CHARS:
        _fail("host", f"longer than {MAX_HOST_CHARS} characters")
    target = ALL_DEVICES if host == ALL_DEVICES else device_id(host)
    has_ignore, has_command = "ignore" in data, "command" in data
    if has_ignore and has_command:
        _fail("", "legacy command has both 'ignore' and 'command'")
    if has_ignore:
        ignore = data["ignore"]
        if type(ignore) is not str:
            _fail("ignore", f"expected a comma-separated string, got {_describe(ignore)}")
        return SetIgnore(target=target, ignore=split_names(ignore))
    if has_command:
        if data["command"] != "refresh":
            _fail("command", f"unknown legacy command {_describe(data['command'])}")
        return Refresh(target=target)
    _fail("", "legacy command needs 'ignore' or 'command'")


def parse_command(obj: object) -> Command:
    """A command from `ignore_chan` (v1 or the seed's legacy shapes).

    Raises ProtocolError, and nothing else, on any malformed input.
    """
    try:
        data = _obj(obj, "")
        if "v" not in data and "host" in data:
            return _parse_legacy_command(data)
        return _dispatch(data, _COMMANDS, "command")
    except ProtocolError:
        raise
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:  # pragma: no cover
        raise ProtocolError(f"malformed command ({type(exc).__name__})") from None


def parse_device_message(obj: object) -> DeviceMessage:
    """A `results` or `state` message from `device.<id>`.

    Raises ProtocolError, and nothing else, on any malformed input.
    """
    try:
        return _dispatch(obj, _DEVICE_MESSAGES, "device message")
    except ProtocolError:
        raise
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:  # pragma: no cover
        raise ProtocolError(f"malformed device message ({type(exc).__name__})") from None


def parse_message(obj: object) -> Message:
    """Any v1 message or legacy command, for tools that read every channel (tests, logs)."""
    data = _obj(obj, "")
    kind = data.get("kind")
    if type(kind) is str and kind in _DEVICE_MESSAGES:
        return parse_device_message(data)
    return parse_command(data)


def _reject_constant(name: str) -> NoReturn:
    raise ProtocolError(f"not valid JSON: {name} is not allowed")


#: `json.loads` with a keyword argument builds a new decoder per call; the dashboard
#: decodes thousands of messages a second, so one strict decoder is kept.
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(raw: str | bytes | bytearray) -> object:
    """`json.loads` for untrusted input: size-capped, no NaN/Infinity, ProtocolError only."""
    if len(raw) > MAX_RAW_BYTES:
        raise ProtocolError(f"message larger than {MAX_RAW_BYTES} bytes")
    try:
        if not isinstance(raw, str):  # what json.loads does with bytes
            raw = bytes(raw).decode(json.detect_encoding(raw), "surrogatepass")
        return _STRICT_DECODER.decode(raw)
    except ProtocolError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise ProtocolError(f"not valid JSON: {reason}") from None


# --- size -----------------------------------------------------------------------------------
def wire_size(message: _Wire | Mapping[str, Any]) -> int:
    """Bytes of the message as the SDK publishes it.

    The SDK serializes with plain `json.dumps` (ASCII escapes, `", "` and `": "`
    separators), which is larger than our compact form; measuring that keeps the
    cap honest whatever the transport does.
    """
    wire = message.to_wire() if isinstance(message, _Wire) else message
    return len(json.dumps(wire))


def message_budget(encrypted: bool) -> int:
    """Size budget for `wire_size` (smaller when the crypto module will inflate it)."""
    return MAX_ENCRYPTED_MESSAGE_BYTES if encrypted else MAX_MESSAGE_BYTES


# Successive shrink levels: (output chars, long output chars, perf items kept).
_SHRINK_LEVELS: Final = (
    (MAX_OUTPUT_CHARS, 1024, 16),
    (MAX_OUTPUT_CHARS, 256, 4),
    (256, 0, 1),
    (128, 0, 0),
    (64, 0, 0),
)


def _shrink(result: Result, output_chars: int, long_chars: int, perf_items: int) -> Result:
    output = truncate_text(result.output, output_chars)
    long_output = truncate_text(result.long_output, long_chars)
    perf = result.perf[:perf_items]
    if output == result.output and long_output == result.long_output and perf == result.perf:
        return result
    return replace(result, output=output, long_output=long_output, perf=perf, truncated=True)


def fit_results(
    message: ResultsMessage, max_bytes: int = MAX_MESSAGE_BYTES
) -> list[ResultsMessage]:
    """Make a round publishable: shrink, and only if that is not enough, split.

    Long outputs, perf lists and then outputs are cut step by step (each cut
    visible: TRUNCATION_MARKER and `truncated: true`). If even the smallest form
    does not fit (hundreds of results), the round is split into several messages
    with consecutive `seq` numbers starting at `message.seq`; no result is ever
    dropped. Usually returns `[message]` unchanged.
    """
    if wire_size(message) <= max_bytes:
        return [message]
    shrunk = message
    for level in _SHRINK_LEVELS:
        shrunk = replace(message, results=tuple(_shrink(r, *level) for r in message.results))
        if wire_size(shrunk) <= max_bytes:
            return [shrunk]
    return _split(shrunk, max_bytes)


def _split(message: ResultsMessage, max_bytes: int) -> list[ResultsMessage]:
    envelope = wire_size(replace(message, results=()))
    chunks: list[list[Result]] = [[]]
    used = envelope
    for result in message.results:
        size = len(json.dumps(result.to_wire())) + 2  # ", " between items
        if chunks[-1] and used + size > max_bytes:
            chunks.append([])
            used = envelope
        chunks[-1].append(result)
        used += size
    return [
        replace(message, seq=message.seq + index, results=tuple(chunk))
        for index, chunk in enumerate(chunks)
    ]


def fit_state(message: StateMessage, max_bytes: int = MAX_MESSAGE_BYTES) -> StateMessage:
    """Make a `state` message publishable: shorten rejection texts, then leave out
    trailing rejected and script entries, counting them in `omitted`."""
    if wire_size(message) <= max_bytes:
        return message
    rejected = tuple(
        Rejection(truncate_text(item.file, 64), truncate_text(item.reason, 120))
        for item in message.rejected
    )
    fitted = replace(message, rejected=rejected)
    if wire_size(fitted) <= max_bytes:
        return fitted
    scripts = list(message.scripts)
    kept_rejected = list(rejected)
    omitted = message.omitted
    size = wire_size(fitted) + 32  # room for the "omitted" field
    while True:
        # Rejections go first: the scripts that do run matter more to the dashboard.
        while size > max_bytes and (kept_rejected or scripts):
            entry: Rejection | ScriptEntry = kept_rejected.pop() if kept_rejected else scripts.pop()
            size -= len(json.dumps(entry.to_wire())) + 2
            omitted += 1
        fitted = replace(
            message, scripts=tuple(scripts), rejected=tuple(kept_rejected), omitted=omitted
        )
        size = wire_size(fitted)
        if size <= max_bytes or not (kept_rejected or scripts):
            return fitted


# --- App Context custom data ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """Settings read back from uuid metadata `custom`; None means "not stored there"."""

    ignore: tuple[str, ...] | None = None
    interval: int | None = None


CustomScalar: TypeAlias = str | int | float | bool


def encode_custom(
    ignore: Iterable[str],
    interval: int,
    *,
    base: Mapping[str, object] | None = None,
) -> dict[str, CustomScalar]:
    """uuid metadata `custom` for a device: `{"ignore": "cpu,disk", "interval": 10}`.

    PubNub only stores flat scalars, hence the comma-joined string (the seed's
    form). Other flat scalar keys in `base` are kept, so writing our two fields
    never wipes someone else's.
    """
    if isinstance(ignore, str):  # a str is an Iterable[str] of single letters
        raise ProtocolError("ignore: expected a list of test names, got a string")
    names = normalize_ignore_list(list(ignore), "ignore")
    _int(interval, "interval", MIN_INTERVAL, MAX_INTERVAL)
    custom: dict[str, CustomScalar] = {}
    for key, value in (base or {}).items():
        if type(key) is not str or type(value) not in (str, int, float, bool):
            continue  # PubNub refuses nested values; drop them rather than fail the write
        if type(value) is float and not math.isfinite(value):
            continue
        custom[key] = value  # type: ignore[assignment]
    custom["ignore"] = ",".join(names)
    custom["interval"] = interval
    return custom


def decode_custom(custom: object) -> DeviceSettings:
    """Read `custom` leniently: the seed's `"CPU, disk"` string, a list, a JSON string of
    the whole object, or garbage (which yields None fields, never an exception)."""
    if isinstance(custom, str | bytes | bytearray):
        try:
            custom = decode_json(custom)
        except ProtocolError:
            return DeviceSettings()
    if not isinstance(custom, dict):
        return DeviceSettings()
    return DeviceSettings(
        ignore=_lenient_ignore(custom.get("ignore")),
        interval=_lenient_interval(custom.get("interval")),
    )


def _lenient_ignore(value: object) -> tuple[str, ...] | None:
    if type(value) is str:
        if len(value) > MAX_IGNORE_NAMES * (MAX_TEST_NAME_CHARS + 4):
            return None
        candidates: Sequence[object] = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        candidates = value[: MAX_IGNORE_NAMES * 4]
    else:
        return None
    names: set[str] = set()
    for candidate in candidates:
        if candidate == "":
            continue
        try:
            names.add(normalize_test_name(candidate))
        except ProtocolError:
            continue  # one bad name must not lose the others
    kept: list[str] = []
    used = 0
    for name in sorted(names)[:MAX_IGNORE_NAMES]:
        used += len(json.dumps(name)) + 2
        if used > MAX_IGNORE_BYTES:
            break  # same bounds as the strict parser, so the result can be re-sent
        kept.append(name)
    return tuple(kept)


def _lenient_interval(value: object) -> int | None:
    number: object = value
    if type(value) is str and re.fullmatch(r"\s*[0-9]{1,6}\s*", value):
        number = int(value)
    elif type(value) is float and math.isfinite(value) and value.is_integer():
        number = int(value)
    if type(number) is int and MIN_INTERVAL <= number <= MAX_INTERVAL:
        return number
    return None


__all__ = [
    "AGENT_VERSION",
    "ALL_DEVICES",
    "DEVICE_CHANNEL_PREFIX",
    "DEVICE_WILDCARD",
    "MAX_DEVICE_ID_CHARS",
    "MAX_ENCRYPTED_MESSAGE_BYTES",
    "MAX_FILE_CHARS",
    "MAX_HOST_CHARS",
    "MAX_IGNORE_BYTES",
    "MAX_IGNORE_NAMES",
    "MAX_INTERVAL",
    "MAX_LONG_OUTPUT_CHARS",
    "MAX_MESSAGE_BYTES",
    "MAX_OUTPUT_CHARS",
    "MAX_PERF",
    "MAX_RAW_BYTES",
    "MAX_REASON_CHARS",
    "MAX_REJECTED",
    "MAX_RESULTS",
    "MAX_SCRIPTS",
    "MAX_TEST_NAME_CHARS",
    "MIN_INTERVAL",
    "PROTOCOL_VERSION",
    "TRUNCATION_MARKER",
    "Command",
    "CustomScalar",
    "DeviceMessage",
    "DeviceSettings",
    "Message",
    "Perf",
    "ProtocolError",
    "Refresh",
    "RejectReason",
    "Rejection",
    "Result",
    "ResultsMessage",
    "RunNow",
    "ScriptEntry",
    "SetIgnore",
    "SetInterval",
    "StateMessage",
    "Status",
    "decode_custom",
    "decode_json",
    "device_channel",
    "device_id",
    "device_id_from_channel",
    "encode_custom",
    "fit_results",
    "fit_state",
    "is_device_id",
    "is_test_name",
    "message_budget",
    "normalize_ignore_list",
    "normalize_test_name",
    "parse_command",
    "parse_device_message",
    "parse_message",
    "split_names",
    "test_name",
    "test_name_problem",
    "truncate_text",
    "wire_size",
]
