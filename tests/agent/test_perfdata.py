"""Parser tests: the Monitoring Plugins guideline examples plus the edge cases we must survive."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflex_agent.perfdata import (
    NagiosRange,
    ParsedOutput,
    PerfDatum,
    classify,
    parse_output,
    parse_perfdata,
    parse_range,
    status_for_code,
    threshold_breached,
)

# --- perfdata items --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Guidelines / check_disk: label=value[UOM];warn;crit;min;max
        ("/=2643MB;5948;5958;0;5968", [PerfDatum("/", 2643.0, "MB", "5948", "5958", 0.0, 5968.0)]),
        # check_http, with empty warn/crit and a trailing field dropped
        (
            "time=0.270634s;;;0.000000 size=20156B;;;0",
            [
                PerfDatum("time", 0.270634, "s", None, None, 0.0, None),
                PerfDatum("size", 20156.0, "B", None, None, 0.0, None),
            ],
        ),
        # Quoted labels; ping style
        (
            "'rta'=12.445000ms 'pl'=0%",
            [PerfDatum("rta", 12.445, "ms"), PerfDatum("pl", 0.0, "%")],
        ),
        # Quoted label with spaces, '=' and an escaped quote ('')
        ("'a b''c = d'=5%;80;90", [PerfDatum("a b'c = d", 5.0, "%", "80", "90")]),
        # No UOM: a count (users, processes, load)
        ("load1=4.7 users=3", [PerfDatum("load1", 4.7), PerfDatum("users", 3.0)]),
        # U = unknown value
        ("'temp'=U;;;0;100", [PerfDatum("temp", None, "", None, None, 0.0, 100.0)]),
        ("x=U", [PerfDatum("x", None)]),
        # Range thresholds kept verbatim
        (
            "a=5;10:;@10:20;; b=7;~:10;10:20",
            [
                PerfDatum("a", 5.0, "", "10:", "@10:20"),
                PerfDatum("b", 7.0, "", "~:10", "10:20"),
            ],
        ),
        # Trailing unfilled semicolons may be dropped
        ("a=1;2", [PerfDatum("a", 1.0, "", "2", None)]),
        ("a=1;;;;", [PerfDatum("a", 1.0)]),
        # Counter; negative, signed and leading-dot numbers; exponent
        (
            "rx=123456c t=-5 u=+3 v=.5 w=1e3",
            [
                PerfDatum("rx", 123456.0, "c"),
                PerfDatum("t", -5.0),
                PerfDatum("u", 3.0),
                PerfDatum("v", 0.5),
                PerfDatum("w", 1000.0),
            ],
        ),
        # Lenient: units outside the classic list, comma decimal from a German locale
        (
            "temp=21.5°C rate=5B/s mem=2KiB x=0,5",
            [
                PerfDatum("temp", 21.5, "°C"),
                PerfDatum("rate", 5.0, "B/s"),
                PerfDatum("mem", 2.0, "KiB"),
                PerfDatum("x", 0.5),
            ],
        ),
        # Extra fields beyond max are ignored
        ("a=1;2;3;4;5;6;7", [PerfDatum("a", 1.0, "", "2", "3", 4.0, 5.0)]),
        # Unparseable min/max become None, the datum survives
        ("a=1;;;zero;hundred", [PerfDatum("a", 1.0)]),
        # Extra whitespace between items
        ("  a=1    b=2  ", [PerfDatum("a", 1.0), PerfDatum("b", 2.0)]),
    ],
)
def test_parse_perfdata_examples(text: str, expected: list[PerfDatum]) -> None:
    assert parse_perfdata(text) == expected


@pytest.mark.parametrize("uom", ["s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", ""])
def test_every_standard_uom(uom: str) -> None:
    assert parse_perfdata(f"x=12.5{uom};1;2;0;100") == [
        PerfDatum("x", 12.5, uom, "1", "2", 0.0, 100.0)
    ]


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("", []),
        ("garbage", []),
        ("=5", []),
        ("a=", []),
        ("a=abc", []),
        ("a=1.2.3", []),
        ("a=inf b=nan c=1", ["c"]),
        ("a = 5", []),
        ("a=5 b=bad c=7", ["a", "c"]),
        ("''=5 ' '=6 ok=1", ["ok"]),
        ("a=1 'unterminated=4 b=2", ["a"]),
        ("'q' =5 r=1", ["r"]),
        ("a=;1;2 b=2", ["b"]),
        ("a=1%%% b=2", ["a", "b"]),
    ],
)
def test_malformed_perfdata_skips_only_the_bad_datum(text: str, labels: list[str]) -> None:
    assert [d.label for d in parse_perfdata(text)] == labels


# --- whole outputs ---------------------------------------------------------------------------

NAGIOS3_MULTILINE = (
    "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
    "/ 15272 MB (77%);\n"
    "/boot 68 MB (69%);\n"
    "/home 69357 MB (27%);\n"
    "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
    "/home=69357MB;253404;253409;0;253414 \n"
    "/var/log=818MB;970;975;0;980\n"
)


def test_nagios3_multiline_example() -> None:
    """The plugin API's own example: perfdata on line 1 and after a '|' in long output."""
    parsed = parse_output(NAGIOS3_MULTILINE, 0)
    assert parsed.status == "ok" and parsed.code == 0
    assert parsed.output == "DISK OK - free space: / 3326 MB (56%);"
    assert parsed.long_output == (
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
    )
    assert [d.label for d in parsed.perf] == ["/", "/boot", "/home", "/var/log"]
    assert parsed.perf[2] == PerfDatum("/home", 69357.0, "MB", "253404", "253409", 0.0, 253414.0)
    assert (parsed.value, parsed.unit) == (2643.0, "MB")


def test_plugin_style_line() -> None:
    parsed = parse_output("CPU OK - 12.3% used | 'cpu'=12.3%;80;90;0;100\n", 0)
    assert parsed == ParsedOutput(
        status="ok",
        code=0,
        output="CPU OK - 12.3% used",
        long_output="",
        value=12.3,
        unit="%",
        perf=[PerfDatum("cpu", 12.3, "%", "80", "90", 0.0, 100.0)],
    )


def test_long_output_without_perfdata() -> None:
    parsed = parse_output("WARNING - 2 disks\n/ 91%\n/var 95%\n\n", 1)
    assert parsed.output == "WARNING - 2 disks"
    assert parsed.long_output == "/ 91%\n/var 95%"
    assert parsed.perf == [] and parsed.value is None


def test_perfdata_only_in_long_output() -> None:
    parsed = parse_output("OK\nline two | a=1s\nb=2s", 0)
    assert parsed.output == "OK"
    assert parsed.long_output == "line two"
    assert [(d.label, d.value) for d in parsed.perf] == [("a", 1.0), ("b", 2.0)]
    assert (parsed.value, parsed.unit) == (1.0, "s")


def test_crlf_and_leading_blank_lines() -> None:
    parsed = parse_output("\r\n\r\nOK - fine | a=1\r\nmore\r\n", 0)
    assert parsed.output == "OK - fine"
    assert parsed.long_output == "more"
    assert parsed.value == 1.0


def test_first_perfdatum_decides_value_even_when_unknown() -> None:
    parsed = parse_output("OK | a=U b=5%", 0)
    assert parsed.value is None and parsed.unit == ""
    assert len(parsed.perf) == 2


def test_malformed_perfdata_keeps_the_text() -> None:
    parsed = parse_output("OK - text stays | this is not perfdata", 0)
    assert parsed.output == "OK - text stays"
    assert parsed.perf == []


@pytest.mark.parametrize(
    ("stdout", "value", "unit"),
    [
        ("42.5", 42.5, ""),
        ("42.5%", 42.5, "%"),
        ("  17 \n", 17.0, ""),
        ("-3", -3.0, ""),
        ("42 MB", 42.0, "MB"),
        ("0,75", 0.75, ""),
        ("3 users", None, ""),
        ("OK", None, ""),
        ("", None, ""),
        ("12.5.1", None, ""),
        ("nan", None, ""),
        ("42 |", 42.0, ""),
    ],
)
def test_bare_number_is_the_value(stdout: str, value: float | None, unit: str) -> None:
    parsed = parse_output(stdout, 0)
    assert (parsed.value, parsed.unit) == (value, unit)


@pytest.mark.parametrize(
    ("code", "status"), [(0, "ok"), (1, "warning"), (2, "critical"), (3, "unknown")]
)
def test_standard_exit_codes(code: int, status: str) -> None:
    parsed = parse_output("TEXT | v=1", code)
    assert (parsed.status, parsed.code, parsed.output) == (status, code, "TEXT")


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (4, "exit code 4"),
        (127, "exit code 127"),
        (137, "exit code 137 (signal 9 SIGKILL?)"),
        (255, "exit code 255"),
        (-9, "killed by signal 9 SIGKILL"),
        (-15, "killed by signal 15 SIGTERM"),
        (-99, "killed by signal 99"),
        (None, "no exit code"),
    ],
)
def test_other_exit_codes_are_unknown_with_the_code(code: int | None, fragment: str) -> None:
    parsed = parse_output("half a result | v=3", code)
    assert parsed.status == "unknown" and parsed.code == 3
    assert parsed.output == f"{fragment}: half a result"
    assert parsed.value == 3.0  # the data is still worth showing
    assert parse_output("", code).output == fragment


def test_status_for_code() -> None:
    assert status_for_code(2) == ("critical", 2)
    assert status_for_code(42) == ("unknown", 3)
    assert status_for_code(None) == ("unknown", 3)


@given(st.text(), st.one_of(st.none(), st.integers(min_value=-300, max_value=300)))
def test_parse_output_never_raises(stdout: str, code: int | None) -> None:
    parsed = parse_output(stdout, code)
    assert parsed.code in (0, 1, 2, 3)
    assert parsed.status in ("ok", "warning", "critical", "unknown")
    assert "\n" not in parsed.output


@given(st.text(alphabet="'=;| .-0123456789abUc%~@:\n\t"))
def test_parse_perfdata_never_raises_on_near_misses(text: str) -> None:
    for datum in parse_perfdata(text):
        assert datum.label.strip()
        assert datum.value is None or math.isfinite(datum.value)


_labels = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1
).filter(lambda s: s.strip() and s == s.strip())
_values = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).map(lambda v: round(v, 3))


@given(_labels, _values, st.sampled_from(["", "%", "s", "ms", "B", "KB", "c"]))
def test_round_trip_of_written_perfdata(label: str, value: float, uom: str) -> None:
    """Whatever label a plugin quotes correctly comes back intact."""
    quoted = "'" + label.replace("'", "''") + "'"
    text = f"OK | {quoted}={value!r}{uom};10:;@5:6;0;100 next=1"
    parsed = parse_output(text, 0)
    assert parsed.perf[0] == PerfDatum(label, value, uom, "10:", "@5:6", 0.0, 100.0)
    assert parsed.perf[1].label == "next"


# --- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "breached"),
    [
        # Guidelines' table: "10" = outside 0..10
        ("10", -1, True),
        ("10", 0, False),
        ("10", 10, False),
        ("10", 10.01, True),
        # "10:" = below 10
        ("10:", 9.99, True),
        ("10:", 10, False),
        ("10:", 1e12, False),
        # "~:10" = above 10
        ("~:10", -1e12, False),
        ("~:10", 10, False),
        ("~:10", 11, True),
        # "10:20" = outside 10..20
        ("10:20", 9, True),
        ("10:20", 10, False),
        ("10:20", 20, False),
        ("10:20", 21, True),
        # "@10:20" = inside 10..20, endpoints included
        ("@10:20", 9, False),
        ("@10:20", 10, True),
        ("@10:20", 15, True),
        ("@10:20", 20, True),
        ("@10:20", 21, False),
        # Other forms
        (":5", 6, True),
        ("@0:", 0, True),
        ("@0:", -0.1, False),
        ("~:", 1e300, False),
        ("-10:-5", -7, False),
        ("-10:-5", -4, True),
        ("80%", 81, True),
        (" 80 ", 79, False),
        ("@~:0", -5, True),
        ("1.5", 1.6, True),
    ],
)
def test_threshold_breached(spec: str, value: float, breached: bool) -> None:
    assert threshold_breached(value, spec) is breached


@pytest.mark.parametrize("spec", ["", "@", "abc", "20:10", "1:2:3", "~", "10:~", "nan", "inf"])
def test_invalid_ranges(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_range(spec)
    assert threshold_breached(5.0, spec) is False


def test_threshold_breached_missing_inputs() -> None:
    assert threshold_breached(None, "10") is False
    assert threshold_breached(5.0, None) is False
    assert threshold_breached(math.nan, "10") is False


def test_parse_range_structure() -> None:
    assert parse_range("@10:20") == NagiosRange(10.0, 20.0, inside=True)
    assert parse_range("~:10") == NagiosRange(-math.inf, 10.0)
    assert parse_range("10:") == NagiosRange(10.0, math.inf)
    assert parse_range("10") == NagiosRange(0.0, 10.0)


@pytest.mark.parametrize(
    ("value", "warn", "crit", "code"),
    [
        (50, "80", "90", 0),
        (85, "80", "90", 1),
        (95, "80", "90", 2),
        (5, "10:", "5:", 1),
        (4, "10:", "5:", 2),
        (50, None, None, 0),
        (None, "80", "90", 0),
        (95, "bogus", "90", 2),
    ],
)
def test_classify(value: float | None, warn: str | None, crit: str | None, code: int) -> None:
    assert classify(value, warn, crit) == code
