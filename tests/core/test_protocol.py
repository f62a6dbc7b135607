"""Wire protocol v1: builders, strict parsers, size limits, App Context custom data."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflex_core import protocol as p

# --- fixtures -------------------------------------------------------------------------------
SHA = "ab" * 32


def make_result(test: str = "cpu", **overrides: Any) -> p.Result:
    fields: dict[str, Any] = {
        "test": test,
        "status": p.Status.WARNING,
        "output": "load 3.1",
        "value": 3.1,
        "unit": "",
        "perf": (p.Perf("load1", 3.1, "", "2", "4", 0, None),),
        "duration_ms": 12,
        "ts": 1_700_000_000.5,
    }
    fields.update(overrides)
    return p.Result(**fields)


def make_results(results: tuple[p.Result, ...] | None = None, **overrides: Any) -> p.ResultsMessage:
    fields: dict[str, Any] = {
        "host": "web1.example.com",
        "id": "web1-example-com",
        "seq": 7,
        "ts": 1_700_000_001.0,
        "interval": 10,
        "results": (make_result(),) if results is None else results,
    }
    fields.update(overrides)
    return p.ResultsMessage(**fields)


def make_state(**overrides: Any) -> p.StateMessage:
    fields: dict[str, Any] = {
        "host": "web1.example.com",
        "id": "web1-example-com",
        "ts": 1_700_000_001.0,
        "interval": 10,
        "ignored": ("disk",),
        "scripts": (p.ScriptEntry("cpu", "cpu.py", SHA),),
        "rejected": (p.Rejection("../x.py", "bad name: contains a path separator"),),
    }
    fields.update(overrides)
    return p.StateMessage(**fields)


def results_wire() -> dict[str, Any]:
    return make_results().to_wire()


def state_wire() -> dict[str, Any]:
    return make_state().to_wire()


def over_the_wire(obj: dict[str, Any]) -> Any:
    """What a receiver gets: the SDK's JSON round trip."""
    return json.loads(json.dumps(obj))


# --- constants and names --------------------------------------------------------------------
def test_constants() -> None:
    assert p.PROTOCOL_VERSION == 1
    assert isinstance(p.AGENT_VERSION, str) and p.AGENT_VERSION
    assert p.DEVICE_WILDCARD == "device.*"
    assert p.MAX_MESSAGE_BYTES == 30 * 1024


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web1.example.com", "web1-example-com"),
        ("WEB1", "web1"),
        ("db_2-east", "db_2-east"),
        ("a b:c/d", "a-b-c-d"),
        ("héllo", "h-llo"),
        ("  padded  ", "padded"),
        ("...", "---"),
    ],
)
def test_device_id(name: str, expected: str) -> None:
    assert p.device_id(name) == expected
    assert p.device_id(expected) == expected  # idempotent: a legacy id-as-host still matches
    assert p.is_device_id(expected)


@pytest.mark.parametrize("name", ["", "   ", None, 5])
def test_device_id_refuses_empty(name: Any) -> None:
    with pytest.raises(p.ProtocolError):
        p.device_id(name)


def test_long_device_ids_stay_valid_and_distinct() -> None:
    first = p.device_id("a" * 200 + ".example.com")
    second = p.device_id("a" * 200 + ".example.org")
    assert len(first) == p.MAX_DEVICE_ID_CHARS and p.is_device_id(first)
    assert first != second
    assert p.device_id(first) == first


def test_device_channels() -> None:
    assert p.device_channel("web1-example-com") == "device.web1-example-com"
    assert p.device_id_from_channel("device.web1-example-com") == "web1-example-com"
    for channel in ["ignore", "device.", "device.Web1", "device.a.b", "devicex"]:
        assert p.device_id_from_channel(channel) is None
    with pytest.raises(p.ProtocolError):
        p.device_channel("Web1.example.com")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("cpu.py", "cpu"),
        ("Disk.SH", "disk"),
        ("/opt/reflex/scripts/Load.py", "load"),
        ("check_http", "check_http"),
        ("a.b.py", "a.b"),
        ("my check.sh", "my check"),
    ],
)
def test_test_name(path: str, expected: str) -> None:
    assert p.test_name(path) == expected
    assert p.is_test_name(expected)


@pytest.mark.parametrize("path", ["a,b.py", ".hidden.py", "tab\there.sh", "esc\x1b.py", "x" * 65])
def test_test_name_refuses(path: str) -> None:
    with pytest.raises(p.ProtocolError):
        p.test_name(path)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, p.Status.OK),
        (1, p.Status.WARNING),
        (2, p.Status.CRITICAL),
        (3, p.Status.UNKNOWN),
        (4, p.Status.UNKNOWN),
        (137, p.Status.UNKNOWN),
        (-9, p.Status.UNKNOWN),
    ],
)
def test_status_from_exit_code(code: int, status: p.Status) -> None:
    assert p.Status.from_code(code) is status


def test_status_codes() -> None:
    assert [s.code for s in p.Status] == [0, 1, 2, 3]
    assert [s.value for s in p.Status] == ["ok", "warning", "critical", "unknown"]


# --- wire shapes ----------------------------------------------------------------------------
def test_results_wire_shape() -> None:
    wire = results_wire()
    assert list(wire) == ["v", "kind", "host", "id", "seq", "ts", "interval", "results"]
    assert wire["v"] == 1 and wire["kind"] == "results"
    result = wire["results"][0]
    assert list(result) == [
        "test",
        "status",
        "code",
        "output",
        "value",
        "unit",
        "perf",
        "duration_ms",
        "ts",
    ]
    assert result["status"] == "warning" and result["code"] == 1
    assert result["perf"] == [
        {
            "label": "load1",
            "value": 3.1,
            "uom": "",
            "warn": "2",
            "crit": "4",
            "min": 0.0,
            "max": None,
        }
    ]


def test_state_wire_shape() -> None:
    wire = state_wire()
    assert wire == {
        "v": 1,
        "kind": "state",
        "host": "web1.example.com",
        "id": "web1-example-com",
        "ts": 1_700_000_001.0,
        "interval": 10,
        "ignored": ["disk"],
        "scripts": [{"test": "cpu", "file": "cpu.py", "sha256": SHA}],
        "rejected": [{"file": "../x.py", "reason": "bad name: contains a path separator"}],
        "agent_version": p.AGENT_VERSION,
    }


@pytest.mark.parametrize(
    ("command", "wire"),
    [
        (
            p.SetIgnore("*", ("Disk", "cpu", "disk")),
            {"v": 1, "kind": "set_ignore", "target": "*", "ignore": ["cpu", "disk"]},
        ),
        (p.Refresh("web1"), {"v": 1, "kind": "refresh", "target": "web1"}),
        (
            p.SetInterval("web1", 30),
            {"v": 1, "kind": "set_interval", "target": "web1", "interval": 30},
        ),
        (p.RunNow("*"), {"v": 1, "kind": "run_now", "target": "*"}),
        (p.RunNow("*", "CPU"), {"v": 1, "kind": "run_now", "target": "*", "test": "cpu"}),
    ],
)
def test_command_wire(command: p.Command, wire: dict[str, Any]) -> None:
    assert command.to_wire() == wire
    assert p.parse_command(over_the_wire(wire)) == command
    assert p.parse_message(over_the_wire(wire)) == command


@pytest.mark.parametrize("message", [make_results(), make_state()])
def test_device_messages_round_trip(message: p.DeviceMessage) -> None:
    assert p.parse_device_message(over_the_wire(message.to_wire())) == message
    assert p.parse_message(p.decode_json(message.to_json())) == message


def test_to_json_is_compact() -> None:
    text = make_results().to_json()
    assert ", " not in text and ": " not in text
    assert json.loads(text) == results_wire()


def test_optional_result_fields_round_trip() -> None:
    result = make_result(long_output="line 2\nline 3", truncated=True, value=None, perf=())
    wire = result.to_wire()
    assert wire["long_output"] == "line 2\nline 3" and wire["truncated"] is True
    message = make_results((result,))
    assert p.parse_device_message(over_the_wire(message.to_wire())) == message


def test_minimal_result_defaults() -> None:
    """Optional result fields may be absent on the wire."""
    wire = {"test": "cpu", "status": "ok", "code": 0, "output": "fine", "ts": 1}
    message = results_wire()
    message["results"] = [wire]
    parsed = p.parse_device_message(message)
    assert isinstance(parsed, p.ResultsMessage)
    assert parsed.results[0] == p.Result("cpu", p.Status.OK, "fine", ts=1.0)


def test_unknown_fields_are_ignored() -> None:
    wire = results_wire()
    wire["future"] = {"x": 1}
    wire["results"][0]["future"] = [1]
    assert p.parse_device_message(wire) == make_results()


def test_test_names_are_lowercased_on_parse() -> None:
    wire = results_wire()
    wire["results"][0]["test"] = "CPU"
    parsed = p.parse_device_message(wire)
    assert isinstance(parsed, p.ResultsMessage) and parsed.results[0].test == "cpu"


def test_command_targets() -> None:
    assert p.Refresh("*").applies_to("web1")
    assert p.Refresh("web1").applies_to("web1")
    assert not p.Refresh("web2").applies_to("web1")


# --- legacy commands ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            {"host": "Web1.example.com", "ignore": "CPU, Disk"},
            p.SetIgnore("web1-example-com", ("cpu", "disk")),
        ),
        ({"host": "web1", "ignore": ""}, p.SetIgnore("web1", ())),
        ({"host": "web1", "ignore": " cpu ,, cpu,"}, p.SetIgnore("web1", ("cpu",))),
        ({"host": "web1-example-com", "command": "refresh"}, p.Refresh("web1-example-com")),
        ({"host": "web1.example.com", "command": "refresh"}, p.Refresh("web1-example-com")),
        ({"host": "*", "command": "refresh"}, p.Refresh("*")),
    ],
)
def test_legacy_commands(wire: dict[str, Any], expected: p.Command) -> None:
    assert p.parse_command(wire) == expected


# --- malformed input ------------------------------------------------------------------------
def _cmd(**fields: Any) -> dict[str, Any]:
    return {"v": 1, "target": "*", **fields}


BAD_COMMANDS: list[tuple[Any, str]] = [
    ([], "JSON object"),
    ("refresh", "JSON object"),
    (None, "JSON object"),
    (42, "JSON object"),
    ({}, "missing field 'v'"),
    ({"kind": "refresh", "target": "*"}, "missing field 'v'"),
    (_cmd(kind="refresh", v=2), "unsupported protocol version 2"),
    (_cmd(kind="refresh", v="1"), "unsupported protocol version"),
    (_cmd(kind="refresh", v=True), "unsupported protocol version"),
    (_cmd(kind="refresh", v=1.0), "unsupported protocol version"),
    (_cmd(), "missing field 'kind'"),
    (_cmd(kind="reboot"), "unknown command kind 'reboot'"),
    (_cmd(kind=["refresh"]), "unknown command kind"),
    (_cmd(kind="results"), "unknown command kind"),
    ({"v": 1, "kind": "refresh"}, "missing field 'target'"),
    (_cmd(kind="refresh", target="Web1"), "target"),
    (_cmd(kind="refresh", target=""), "target"),
    (_cmd(kind="refresh", target=5), "target"),
    (_cmd(kind="refresh", target="device.web1"), "target"),
    (_cmd(kind="refresh", target="**"), "target"),
    (_cmd(kind="set_interval"), "missing field 'interval'"),
    (_cmd(kind="set_interval", interval=0), "interval"),
    (_cmd(kind="set_interval", interval=-5), "interval"),
    (_cmd(kind="set_interval", interval=86_401), "interval"),
    (_cmd(kind="set_interval", interval=10**9), "interval"),
    (_cmd(kind="set_interval", interval=10**400), "interval"),
    (_cmd(kind="set_interval", interval=True), "interval"),
    (_cmd(kind="set_interval", interval=1.5), "interval"),
    (_cmd(kind="set_interval", interval=10.0), "interval"),
    (_cmd(kind="set_interval", interval="10"), "interval"),
    (_cmd(kind="set_interval", interval=None), "interval"),
    (_cmd(kind="set_ignore"), "missing field 'ignore'"),
    (_cmd(kind="set_ignore", ignore="cpu"), "ignore: expected a list"),
    (_cmd(kind="set_ignore", ignore=[f"t{i}" for i in range(10_000)]), "more than 256"),
    (_cmd(kind="set_ignore", ignore=[f"t{i}" for i in range(257)]), "more than 256"),
    (_cmd(kind="set_ignore", ignore=["a,b"]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=["ok", 5]), "ignore[1]"),
    (_cmd(kind="set_ignore", ignore=[""]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=["../etc"]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=["x" * 65]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=["bell\x07"]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=[["cpu"]]), "ignore[0]"),
    (_cmd(kind="set_ignore", ignore=["é" * 60 + str(i) for i in range(256)]), "bytes"),
    (_cmd(kind="run_now", test=""), "test"),
    (_cmd(kind="run_now", test=3), "test"),
    ({"host": "web1", "command": "reboot"}, "unknown legacy command"),
    ({"host": "web1", "command": ["refresh"]}, "unknown legacy command"),
    ({"host": "web1"}, "needs 'ignore' or 'command'"),
    ({"host": "web1", "ignore": "a", "command": "refresh"}, "both"),
    ({"host": 5, "command": "refresh"}, "host"),
    ({"host": "", "command": "refresh"}, "empty"),
    ({"host": "web1", "ignore": ["cpu"]}, "comma-separated string"),
    ({"host": "web1", "ignore": "cpu, a/b"}, "ignore"),
    ({"host": "web1", "ignore": ",".join(f"t{i}" for i in range(300))}, "256"),
]


@pytest.mark.parametrize(("obj", "reason"), BAD_COMMANDS)
def test_bad_commands_refused(obj: Any, reason: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_command(obj)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 200  # a short, loggable reason, not an echo of the input


def _results_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    wire = results_wire()
    node: Any = wire
    for step in path[:-1]:
        node = node[step]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return wire


def _state_with(key: str, value: Any) -> dict[str, Any]:
    wire = state_wire()
    if value is DELETE:
        del wire[key]
    else:
        wire[key] = value
    return wire


DELETE = object()
R0 = ("results", 0)
P0 = ("results", 0, "perf", 0)

BAD_DEVICE_MESSAGES: list[tuple[Any, str]] = [
    ([1, 2], "JSON object"),
    (_results_with(("v",), 2), "unsupported protocol version"),
    (_results_with(("v",), DELETE), "missing field 'v'"),
    (_results_with(("kind",), "result"), "unknown device message kind"),
    (_results_with(("kind",), "refresh"), "unknown device message kind"),
    (_results_with(("host",), ""), "host"),
    (_results_with(("host",), None), "host"),
    (_results_with(("host",), "h" * 256), "host"),
    (_results_with(("id",), "Web1"), "id"),
    (_results_with(("id",), DELETE), "missing field 'id'"),
    (_results_with(("seq",), -1), "seq"),
    (_results_with(("seq",), True), "seq"),
    (_results_with(("seq",), 1.0), "seq"),
    (_results_with(("ts",), math.nan), "ts"),
    (_results_with(("ts",), math.inf), "ts"),
    (_results_with(("ts",), -1), "ts"),
    (_results_with(("ts",), "now"), "ts"),
    (_results_with(("ts",), 10**400), "ts"),
    (_results_with(("interval",), 0), "interval"),
    (_results_with(("results",), {}), "results: expected a list"),
    (_results_with(("results",), [None]), "results[0]"),
    (_results_with(("results",), [{}] * 1025), "more than 1024"),
    (_results_with((*R0, "test"), "a/b"), "results[0].test"),
    (_results_with((*R0, "test"), DELETE), "missing field 'test'"),
    (_results_with((*R0, "status"), "fine"), "results[0].status"),
    (_results_with((*R0, "status"), 0), "results[0].status"),
    (_results_with((*R0, "code"), 2), "does not match"),
    (_results_with((*R0, "code"), 137), "results[0].code"),
    (_results_with((*R0, "code"), False), "results[0].code"),
    (_results_with((*R0, "output"), "a\nb"), "single line"),
    (_results_with((*R0, "output"), "x" * 513), "longer than 512"),
    (_results_with((*R0, "output"), None), "results[0].output"),
    (_results_with((*R0, "long_output"), "x" * 5000), "long_output"),
    (_results_with((*R0, "value"), "3.1"), "results[0].value"),
    (_results_with((*R0, "value"), math.nan), "results[0].value"),
    (_results_with((*R0, "value"), True), "results[0].value"),
    (_results_with((*R0, "unit"), 5), "results[0].unit"),
    (_results_with((*R0, "duration_ms"), -1), "duration_ms"),
    (_results_with((*R0, "duration_ms"), 1.5), "duration_ms"),
    (_results_with((*R0, "truncated"), "yes"), "truncated"),
    (_results_with((*R0, "perf"), "load=1"), "results[0].perf"),
    (_results_with((*R0, "perf"), [{"label": "x"}] * 65), "more than 64"),
    (_results_with((*P0, "label"), ""), "results[0].perf[0].label"),
    (_results_with((*P0, "label"), DELETE), "missing field 'label'"),
    (_results_with((*P0, "value"), math.inf), "results[0].perf[0].value"),
    (_results_with((*P0, "value"), [1]), "results[0].perf[0].value"),
    (_results_with((*P0, "warn"), "eighty"), "results[0].perf[0].warn"),
    (_results_with((*P0, "crit"), {"x": 1}), "results[0].perf[0].crit"),
    (_results_with((*P0, "min"), "0"), "results[0].perf[0].min"),
    (_results_with((*P0, "max"), -math.inf), "results[0].perf[0].max"),
    (_state_with("ignored", "cpu"), "ignored"),
    (_state_with("ignored", ["a,b"]), "ignored[0]"),
    (_state_with("scripts", [{"test": "cpu", "file": "cpu.py", "sha256": "xyz"}]), "sha256"),
    (_state_with("scripts", [{"test": "cpu", "file": "", "sha256": SHA}]), "scripts[0].file"),
    (_state_with("scripts", [{"test": "cpu", "file": "cpu.py"}]), "missing field 'sha256'"),
    (_state_with("rejected", [{"file": "x"}]), "missing field 'reason'"),
    (_state_with("rejected", [{"file": "x", "reason": ""}]), "rejected[0].reason"),
    (_state_with("rejected", "x"), "rejected: expected a list"),
    (_state_with("agent_version", DELETE), "missing field 'agent_version'"),
    (_state_with("agent_version", 1), "agent_version"),
    (_state_with("interval", 86_401), "interval"),
    (_state_with("omitted", -1), "omitted"),
]


@pytest.mark.parametrize(("obj", "reason"), BAD_DEVICE_MESSAGES)
def test_bad_device_messages_refused(obj: Any, reason: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_device_message(obj)
    assert reason in str(caught.value)


def test_constructors_validate_too() -> None:
    """Nothing invalid can be built, so nothing invalid can be published."""
    with pytest.raises(p.ProtocolError, match="interval"):
        p.SetInterval("*", 0)
    with pytest.raises(p.ProtocolError, match="value"):
        p.Perf("x", math.nan)
    with pytest.raises(p.ProtocolError, match="output"):
        make_result(output="two\nlines")
    with pytest.raises(p.ProtocolError, match="id"):
        make_results(id="Not An Id")
    with pytest.raises(p.ProtocolError, match="results"):
        make_results(results=("not a result",))  # type: ignore[arg-type]


def test_lone_surrogates_are_replaced() -> None:
    """`"\\ud800"` is valid JSON but cannot be written as UTF-8 (to a terminal or a file)."""
    wire = json.loads(json.dumps(results_wire()).replace("load 3.1", "bad \\ud800 text"))
    parsed = p.parse_device_message(wire)
    assert isinstance(parsed, p.ResultsMessage)
    parsed.results[0].output.encode("utf-8")
    parsed.to_json().encode("utf-8")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("{", "not valid JSON", id="truncated"),
        pytest.param('{"v": NaN}', "NaN", id="nan"),
        pytest.param("[Infinity]", "Infinity", id="infinity"),
        pytest.param(b"\xff\xfe{", "not valid JSON", id="not-utf8"),
        pytest.param("[" * 30_000 + "]" * 30_000, "not valid JSON", id="deep-nesting"),
        pytest.param("1" * 5000, "not valid JSON", id="huge-int"),
        pytest.param(" " * (p.MAX_RAW_BYTES + 1), "larger than", id="oversized"),
    ],
)
def test_decode_json_refuses(raw: str | bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.decode_json(raw)


# --- building from script output and size limits -------------------------------------------
def test_build_truncates_with_marker() -> None:
    result = p.Result.build("CPU", "critical", "x" * 1000 + "\nsecond\r\nthird", ts=1)
    assert result.test == "cpu" and result.status is p.Status.CRITICAL and result.code == 2
    assert len(result.output) == p.MAX_OUTPUT_CHARS
    assert result.output.endswith(p.TRUNCATION_MARKER)
    assert result.long_output == "second\nthird"


def test_build_caps_long_output_and_perf() -> None:
    perf = [p.Perf(f"p{i}", i) for i in range(100)]
    result = p.Result.build("cpu", p.Status.OK, "ok", long_output="y" * 10_000, perf=perf)
    assert len(result.long_output) == p.MAX_LONG_OUTPUT_CHARS
    assert result.long_output.endswith(p.TRUNCATION_MARKER)
    assert len(result.perf) == 64 and result.truncated


def test_truncate_text_never_silent() -> None:
    assert p.truncate_text("short", 10) == "short"
    assert p.truncate_text("long text", 3) == p.TRUNCATION_MARKER


def _big_result(index: int) -> p.Result:
    return p.Result.build(
        f"test{index}",
        p.Status.OK,
        "o" * 600,
        long_output="l" * 5000,
        perf=[p.Perf(f"label{i}", i, "%", "80", "90", 0, 100) for i in range(30)],
        ts=1,
    )


def _assert_fits(messages: list[p.ResultsMessage], budget: int) -> None:
    for message in messages:
        assert p.wire_size(message) <= budget
        assert len(message.to_json().encode()) < 30 * 1024
        assert p.parse_device_message(over_the_wire(message.to_wire())) == message


def test_fit_results_leaves_small_messages_alone() -> None:
    message = make_results()
    assert p.fit_results(message) == [message]


@pytest.mark.parametrize("budget", [p.MAX_MESSAGE_BYTES, p.MAX_ENCRYPTED_MESSAGE_BYTES])
def test_fit_results_shrinks_with_visible_markers(budget: int) -> None:
    message = make_results(tuple(_big_result(i) for i in range(20)))
    assert p.wire_size(message) > budget
    fitted = p.fit_results(message, budget)
    assert len(fitted) == 1
    _assert_fits(fitted, budget)
    assert [r.test for r in fitted[0].results] == [r.test for r in message.results]
    for result in fitted[0].results:
        assert result.truncated
        assert result.long_output.endswith(p.TRUNCATION_MARKER)


def test_fit_results_splits_rather_than_drops() -> None:
    message = make_results(tuple(_big_result(i) for i in range(600)), seq=41)
    fitted = p.fit_results(message)
    assert len(fitted) > 1
    _assert_fits(fitted, p.MAX_MESSAGE_BYTES)
    assert [m.seq for m in fitted] == list(range(41, 41 + len(fitted)))
    tests = [r.test for m in fitted for r in m.results]
    assert tests == [f"test{i}" for i in range(600)]


def test_message_budget() -> None:
    assert p.message_budget(encrypted=False) == p.MAX_MESSAGE_BYTES
    assert p.message_budget(encrypted=True) < p.MAX_MESSAGE_BYTES


def test_fit_state_counts_what_it_leaves_out() -> None:
    scripts = tuple(p.ScriptEntry(f"t{i}", f"t{i}.py", SHA) for i in range(300))
    rejected = tuple(
        p.Rejection.build("x" * 300 + f"{i}.exe", "bad name: " + "r" * 400) for i in range(500)
    )
    message = make_state(scripts=scripts, rejected=rejected)
    fitted = p.fit_state(message)
    assert p.wire_size(fitted) <= p.MAX_MESSAGE_BYTES
    kept = len(fitted.scripts) + len(fitted.rejected)
    assert fitted.omitted == 800 - kept > 0
    assert fitted.to_wire()["omitted"] == fitted.omitted
    assert p.parse_device_message(over_the_wire(fitted.to_wire())) == fitted
    assert p.fit_state(make_state()) == make_state()


def test_rejection_build_truncates_hostile_names() -> None:
    rejection = p.Rejection.build("a" * 5000, "bad name: longer than 255 bytes")
    assert len(rejection.file) == p.MAX_FILE_CHARS
    assert rejection.file.endswith(p.TRUNCATION_MARKER)


# --- App Context custom ---------------------------------------------------------------------
def test_encode_custom() -> None:
    assert p.encode_custom(["Disk", "cpu"], 10) == {"ignore": "cpu,disk", "interval": 10}
    assert p.encode_custom([], 5) == {"ignore": "", "interval": 5}
    merged = p.encode_custom(["cpu"], 10, base={"owner": "ops", "nested": {"x": 1}, "ignore": "x"})
    assert merged == {"owner": "ops", "ignore": "cpu", "interval": 10}
    assert all(type(value) in (str, int, float, bool) for value in merged.values())


@pytest.mark.parametrize(
    ("ignore", "interval"), [(["a,b"], 10), (["cpu"], 0), (["cpu"], True), ("cpu", 10)]
)
def test_encode_custom_refuses_bad_values(ignore: Any, interval: Any) -> None:
    with pytest.raises(p.ProtocolError):
        p.encode_custom(ignore, interval)


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"ignore": "cpu,disk", "interval": 10}, p.DeviceSettings(("cpu", "disk"), 10)),
        ({"ignore": "CPU, Disk"}, p.DeviceSettings(("cpu", "disk"), None)),
        ({"ignore": ""}, p.DeviceSettings((), None)),
        ({"ignore": ["cpu", 5, "a/b", "Disk"]}, p.DeviceSettings(("cpu", "disk"), None)),
        ({"ignore": "cpu, a/b, \x07"}, p.DeviceSettings(("cpu",), None)),
        ({"interval": "30"}, p.DeviceSettings(None, 30)),
        ({"interval": 30.0}, p.DeviceSettings(None, 30)),
        ({"interval": 0}, p.DeviceSettings(None, None)),
        ({"interval": True}, p.DeviceSettings(None, None)),
        ({"interval": "²"}, p.DeviceSettings(None, None)),
        ({"interval": math.nan}, p.DeviceSettings(None, None)),
        ({"ignore": 5, "interval": [1]}, p.DeviceSettings(None, None)),
        ('{"ignore": "cpu", "interval": 10}', p.DeviceSettings(("cpu",), 10)),
        ("not json", p.DeviceSettings()),
        (None, p.DeviceSettings()),
        ([1, 2], p.DeviceSettings()),
        ({}, p.DeviceSettings()),
    ],
)
def test_decode_custom(custom: Any, expected: p.DeviceSettings) -> None:
    assert p.decode_custom(custom) == expected


def test_custom_round_trip() -> None:
    custom = p.encode_custom(["disk", "cpu"], 42)
    assert p.decode_custom(custom) == p.DeviceSettings(("cpu", "disk"), 42)


# --- property tests: hostile input ----------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([10**400, -(10**400), 2**53 + 1])  # too big for a float
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["*", "v", "kind", "results", "state", "refresh", "cpu", "web1", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
KINDS = ["results", "state", "set_ignore", "refresh", "set_interval", "run_now", "x"]
KEYS = ["target", "ignore", "interval", "test", "host", "command", "id", "seq", "ts"]
message_like = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, True, 1.0, "1"]), "kind": st.sampled_from(KINDS)},
    optional={key: json_values for key in KEYS},
)


def _only_protocol_errors(parse: Any, obj: Any) -> None:
    try:
        parse(obj)
    except p.ProtocolError as exc:
        # The parsers' last-resort net turns stray exceptions into "malformed ...":
        # production stays safe, but here it means a check is missing.
        assert not str(exc).startswith("malformed "), exc


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, message_like))
def test_parsers_only_raise_protocol_error(obj: Any) -> None:
    for parse in (p.parse_command, p.parse_device_message, p.parse_message):
        _only_protocol_errors(parse, obj)
    p.decode_custom(obj)  # never raises at all


def _mutation_targets(wire: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) pairs for every field of a valid message."""
    targets: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                targets.append((node, key))
                walk(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                targets.append((node, index))
                walk(value)

    walk(wire)
    return targets


VALID_WIRES = [
    results_wire(),
    state_wire(),
    *(
        command.to_wire()
        for command in (p.SetIgnore("*", ("cpu",)), p.SetInterval("a", 5), p.RunNow("*", "cpu"))
    ),
    {"host": "web1", "ignore": "cpu, disk"},
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(range(len(VALID_WIRES))), st.data())
def test_mutated_valid_messages_only_raise_protocol_error(index: int, data: st.DataObject) -> None:
    """Valid messages with one field replaced by arbitrary JSON reach the deep checks."""
    wire = copy.deepcopy(VALID_WIRES[index])
    targets = _mutation_targets(wire)
    container, key = data.draw(st.sampled_from(targets))
    if data.draw(st.booleans()):
        container[key] = data.draw(st.one_of(json_scalars, json_values))
    elif isinstance(container, dict):
        del container[key]
    else:
        container.pop(key)
    for parse in (p.parse_command, p.parse_device_message, p.parse_message):
        _only_protocol_errors(parse, wire)


printable_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=20
).filter(lambda s: not s.startswith(".") and not any(c in ",/\\" for c in s))
finite = st.floats(allow_nan=False, allow_infinity=False)
perfs = st.builds(
    p.Perf,
    label=st.text(min_size=1, max_size=20).filter(lambda s: "\n" not in s and "\r" not in s),
    value=st.none() | finite,
    uom=st.sampled_from(["", "%", "s", "ms", "B", "KB", "c"]),
    warn=st.none() | st.sampled_from(["80", "10:", "~:5", "@10:20"]),
    min=st.none() | finite,
)
results = st.builds(
    p.Result.build,
    test=printable_names,
    status=st.sampled_from(list(p.Status)),
    output=st.text(max_size=700),
    long_output=st.text(max_size=200),
    value=st.none() | finite,
    perf=st.lists(perfs, max_size=4),
    duration_ms=st.integers(0, 10**6),
    ts=st.floats(0, 2e9),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(results, max_size=8), st.integers(0, 2**40))
def test_built_messages_round_trip(items: list[p.Result], seq: int) -> None:
    message = make_results(tuple(items), seq=seq)
    for fitted in p.fit_results(message):
        assert p.parse_device_message(over_the_wire(fitted.to_wire())) == fitted
