"""Turn a check's stdout and exit code into a result, the Monitoring Plugins way.

Pure functions only (no I/O, no logging) so the agent, the dashboard and the
tests can all use them, and so that no input can make them raise: a check is
code written by somebody else, and a malformed line of its output must cost at
most that one datum, never the result.

The format (Monitoring Plugins development guidelines, Nagios 3 plugin API)::

    TEXT OUTPUT | PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | PERFDATA CONTINUED
    PERFDATA CONTINUED

The first line is the short output, optionally followed by ``|`` and perfdata.
Further lines are long output until a line containing ``|``: the rest of that
line *and every later line* are perfdata too (that is how Nagios reads it).
A perfdata datum is ``'label'=value[UOM];[warn];[crit];[min];[max]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reflex_core.ranges import (
    NUMBER_PATTERN,
    NagiosRange,
    classify,
    parse_range,
    threshold_breached,
)
from reflex_core.ranges import plugin_number as _to_float

__all__ = [
    "STATUS_BY_CODE",
    "NagiosRange",
    "ParsedOutput",
    "PerfDatum",
    "classify",
    "describe_exit_code",
    "parse_output",
    "parse_perfdata",
    "parse_range",
    "status_for_code",
    "threshold_breached",
]

STATUS_BY_CODE: dict[int, str] = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}
"""The only exit codes that carry meaning; everything else is reported as unknown."""

UNKNOWN = 3

_NUMBER = NUMBER_PATTERN
# "U" is the spec's unknown value; a UOM may not start like a number (so "1.2.3" is bad).
_VALUE_RE = re.compile(rf"^(?:(?P<unknown>U)|(?P<num>{_NUMBER})(?P<uom>[^;\d.,+\-][^;]*)?)$")
_BARE_NUMBER_RE = re.compile(rf"^\s*(?P<num>{_NUMBER})\s*(?P<uom>%|[A-Za-z]{{1,3}})?\s*$")


@dataclass(frozen=True, slots=True)
class PerfDatum:
    """One ``'label'=value[UOM];warn;crit;min;max`` item.

    ``warn``/``crit`` stay strings exactly as the plugin wrote them because they
    are range expressions (``10:``, ``@10:20``...), not numbers; ``None`` when
    empty. ``value`` is ``None`` for the spec's ``U`` (unknown). ``min``/``max``
    are numbers per the spec, ``None`` when empty or unparseable.
    """

    label: str
    value: float | None
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A check result before the agent adds its own fields (test, ts, duration).

    ``code`` is always the normalised 0..3 matching ``status`` (the wire protocol
    promises 0..3); a raw exit code outside that range is quoted in ``output``.
    """

    status: str
    code: int
    output: str
    long_output: str = ""
    value: float | None = None
    unit: str = ""
    perf: list[PerfDatum] = field(default_factory=list)


def status_for_code(exit_code: int | None) -> tuple[str, int]:
    """Map an exit code to (status, normalised code); unknown for anything unexpected."""
    if exit_code is not None and exit_code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exit_code], exit_code
    return STATUS_BY_CODE[UNKNOWN], UNKNOWN


def describe_exit_code(exit_code: int) -> str:
    """Human text for an exit code outside 0..3, naming the signal when there is one.

    asyncio reports death by signal N as ``-N``; a shell in between reports it
    as ``128 + N`` (so 137 is SIGKILL, usually the OOM killer).
    """
    if exit_code < 0:
        return f"killed by signal {-exit_code}{_signal_name(-exit_code)}"
    if 128 < exit_code < 128 + 65:
        return f"exit code {exit_code} (signal {exit_code - 128}{_signal_name(exit_code - 128)}?)"
    return f"exit code {exit_code}"


def _signal_name(signum: int) -> str:
    import signal  # local: only needed on the rare abnormal-exit path

    try:
        return f" {signal.Signals(signum).name}"
    except ValueError:
        return ""


def _threshold(text: str) -> str | None:
    text = text.strip()
    return text or None


def _parse_datum(label: str, rest: str) -> PerfDatum | None:
    """Parse ``value[UOM];warn;crit;min;max`` (everything after ``=``); None if bad."""
    fields = rest.split(";")
    match = _VALUE_RE.match(fields[0])
    if match is None:
        return None
    value: float | None = None
    if not match.group("unknown"):
        value = _to_float(match.group("num"))
        if value is None:
            return None
    fields += [""] * (5 - len(fields))
    return PerfDatum(
        label=label,
        value=value,
        uom=(match.group("uom") or "").strip(),
        warn=_threshold(fields[1]),
        crit=_threshold(fields[2]),
        min=_to_float(fields[3]),
        max=_to_float(fields[4]),
    )


def parse_perfdata(text: str) -> list[PerfDatum]:
    """Parse a perfdata string; malformed items are skipped, never raised.

    Items are separated by whitespace. A label may be single-quoted (then it
    may hold spaces and ``=``; ``''`` inside stands for one quote); unquoted
    labels run up to the first ``=``.
    """
    data: list[PerfDatum] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "'":
            # Quoted label: scan for the closing quote, treating '' as an escape.
            j = i + 1
            parts: list[str] = []
            closed = False
            while j < n:
                q = text.find("'", j)
                if q < 0:
                    break
                parts.append(text[j:q])
                if q + 1 < n and text[q + 1] == "'":
                    parts.append("'")
                    j = q + 2
                    continue
                j = q + 1
                closed = True
                break
            if not closed:
                break  # unterminated quote: nothing after it can be trusted
            label = "".join(parts)
            end = _token_end(text, j)
            token = text[j:end]
            i = end
            if not token.startswith("="):
                continue
            rest = token[1:]
        else:
            end = _token_end(text, i)
            token = text[i:end]
            i = end
            label, eq, rest = token.partition("=")
            if not eq:
                continue
        if not label.strip():
            continue
        datum = _parse_datum(label, rest)
        if datum is not None:
            data.append(datum)
    return data


def _token_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return end


def parse_output(stdout: str, exit_code: int | None) -> ParsedOutput:
    """Parse a finished check: status from the exit code, text and perfdata from stdout.

    ``value``/``unit`` come from the first perfdata item; when there is no
    perfdata and the first line is just a number (``42.5`` or ``42.5%``, the
    seed's scripts), that number is the value. Never raises.
    """
    status, code = status_for_code(exit_code)
    lines = [line.rstrip("\r") for line in stdout.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    first = lines[0] if lines else ""
    output, bar, perf_text = first.partition("|")
    output = output.strip()
    perf_chunks = [perf_text] if bar else []

    long_lines: list[str] = []
    for index, line in enumerate(lines[1:], start=1):
        text, bar, more = line.partition("|")
        if bar:
            if text.strip():
                long_lines.append(text.rstrip())
            perf_chunks.append(more)
            perf_chunks.extend(lines[index + 1 :])
            break
        long_lines.append(line)
    long_output = "\n".join(long_lines)

    perf = parse_perfdata(" ".join(perf_chunks)) if perf_chunks else []
    value: float | None = None
    unit = ""
    if perf:
        value, unit = perf[0].value, perf[0].uom
    else:
        bare = _BARE_NUMBER_RE.match(output)
        if bare is not None:
            value = _to_float(bare.group("num"))
            unit = (bare.group("uom") or "") if value is not None else ""

    if exit_code is None or exit_code not in STATUS_BY_CODE:
        reason = "no exit code" if exit_code is None else describe_exit_code(exit_code)
        output = f"{reason}: {output}" if output else reason
    return ParsedOutput(
        status=status,
        code=code,
        output=output,
        long_output=long_output,
        value=value,
        unit=unit,
        perf=perf,
    )
