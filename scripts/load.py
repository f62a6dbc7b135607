#!/usr/bin/env python3
"""Load average check for Reflex Observer (Monitoring Plugins convention).

Reports load per CPU core so one default fits every host; the value is the
1-minute figure, perfdata carries all three. /proc/loadavg, else os.getloadavg().

Standalone: standard library only, so it can be copied to any host and run by
hand. Run with --help for options; scripts/README.md explains the convention.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn

# --- plugin helpers (identical in every bundled check; each script is standalone) ---
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
VERSION = "1.0"
# Where kernel data is read from. Overridable so tests can feed fixed numbers.
PROC = os.environ.get("REFLEX_PROC_ROOT", "/proc")

RANGE_HELP = """\
Thresholds are Monitoring Plugins range expressions [@][start:][end]:
  80      alert if value < 0 or > 80      80:     alert if value < 80
  ~:80    alert if value > 80             10:80   alert if outside 10..80
  @10:80  alert if inside 10..80 (ends included)
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""


def parse_range(spec: str) -> tuple[float, float, bool]:
    """Parse ``[@][start:][end]`` into (start, end, alert_inside); ValueError if bad."""
    text = spec.strip()
    inside = text.startswith("@")
    if inside:
        text = text[1:]
    if ":" in text:
        low, high = text.split(":", 1)
        start = -math.inf if low == "~" else (_number(low) if low else 0.0)
        end = _number(high) if high else math.inf
    else:
        start, end = 0.0, _number(text)
    if start > end:
        raise ValueError(f"start above end in {spec!r}")
    return start, end, inside


def _number(text: str) -> float:
    value = float(text.strip().rstrip("%"))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def breached(value: float, spec: str) -> bool:
    """True when ``value`` is in the alert zone of range ``spec`` (empty spec: never)."""
    if not spec:
        return False
    start, end, inside = parse_range(spec)
    within = start <= value <= end
    return within if inside else not within


def state_of(value: float, warning: str, critical: str) -> int:
    """CRITICAL if the critical range is breached, else WARNING, else OK."""
    if breached(value, critical):
        return CRITICAL
    if breached(value, warning):
        return WARNING
    return OK


def perf(label: str, value: str, uom: str = "", *fields: object) -> str:
    """One perfdata item: 'label'=value[uom];warn;crit;min;max (trailing empties dropped)."""
    rest = ";".join("" if f is None else str(f) for f in fields).rstrip(";")
    quoted = label.replace("'", "''")
    return f"'{quoted}'={value}{uom}" + (f";{rest}" if rest else "")


def finish(name: str, code: int, text: str, perfdata: list[str] | None = None) -> int:
    """Print the one-line result and return the exit code."""
    line = f"{name} {STATES[code]} - {text}"
    if perfdata:
        line += " | " + " ".join(perfdata)
    print(line)
    return code


class Parser(argparse.ArgumentParser):
    """argparse that exits UNKNOWN (3), not 2 (which would read as CRITICAL)."""

    check_name = "CHECK"

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.check_name} UNKNOWN - usage error: {message}")
        sys.exit(UNKNOWN)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # --help and --version end here; the guidelines ask for UNKNOWN.
        if message:
            sys.stderr.write(message)
        sys.exit(UNKNOWN)


def make_parser(name: str, description: str, warning: str, critical: str) -> Parser:
    parser = Parser(
        description=description,
        epilog=RANGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.check_name = name
    parser.add_argument(
        "-w",
        "--warning",
        default=warning,
        metavar="RANGE",
        help=f"warning range (default: {warning})",
    )
    parser.add_argument(
        "-c",
        "--critical",
        default=critical,
        metavar="RANGE",
        help=f"critical range (default: {critical})",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {VERSION}")
    return parser


def check_ranges(parser: Parser, *specs: str) -> None:
    for spec in specs:
        if spec:
            try:
                parse_range(spec)
            except ValueError:
                parser.error(f"invalid range {spec!r}")


def run(name: str, main: Callable[[], int]) -> NoReturn:
    """Run ``main``; any unexpected error is UNKNOWN, never a traceback's exit 1 (WARNING)."""
    try:
        code = main()
    except Exception as exc:  # a check must always answer in the plugin format
        code = finish(name, UNKNOWN, f"internal error: {exc!r}")
    sys.exit(code)


# --- end of plugin helpers ---


NAME = "LOAD"


def read_load() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages: /proc/loadavg, else os.getloadavg()."""
    try:
        with open(os.path.join(PROC, "loadavg"), encoding="ascii") as fh:
            fields = fh.read().split()
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (OSError, ValueError, IndexError):
        if PROC != "/proc":  # a test's fake /proc: do not silently read the real host
            raise
        return os.getloadavg()  # macOS, BSD; raises OSError where unavailable


def triple(parser: Parser, spec: str, option: str) -> list[str]:
    """One range for all three averages, or three comma-separated ranges (1,5,15)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        parser.error(f"{option} takes one range or three separated by commas")
    check_ranges(parser, *parts)
    return parts


def main() -> int:
    parser = make_parser(
        NAME,
        "Load average per CPU core (load / number of cores) over 1, 5 and 15 minutes,"
        " so one threshold fits hosts of any size. The result value is the 1-minute"
        " figure; the status is the worst of the three.",
        warning="2,1.5,1",
        critical="4,3,2",
    )
    args = parser.parse_args()
    warnings = triple(parser, args.warning, "--warning")
    criticals = triple(parser, args.critical, "--critical")
    try:
        loads = read_load()
    except (OSError, ValueError, IndexError) as exc:
        return finish(NAME, UNKNOWN, f"load average not available on this system: {exc}")
    cores = os.cpu_count() or 1
    per_core = [round(load / cores, 2) for load in loads]
    codes = [state_of(v, w, c) for v, w, c in zip(per_core, warnings, criticals, strict=True)]
    code = max(codes)
    text = (
        f"load per core {per_core[0]:.2f}, {per_core[1]:.2f}, {per_core[2]:.2f}"
        f" ({cores} cores; load {loads[0]:.2f}, {loads[1]:.2f}, {loads[2]:.2f})"
    )
    perfdata = [
        perf(label, f"{value:.2f}", "", warn, crit, 0)
        for label, value, warn, crit in zip(
            ("load1", "load5", "load15"), per_core, warnings, criticals, strict=True
        )
    ]
    return finish(NAME, code, text, perfdata)


if __name__ == "__main__":
    run(NAME, main)
