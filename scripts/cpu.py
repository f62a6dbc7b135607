#!/usr/bin/env python3
"""CPU usage check for Reflex Observer (Monitoring Plugins convention).

Samples /proc/stat twice, 0.25 s apart by default, and reports the share of
non-idle time (iowait counts as idle: the CPU was free to run something).
Linux only; elsewhere it answers UNKNOWN.

Standalone: standard library only, so it can be copied to any host and run by
hand. Run with --help for options; scripts/README.md explains the convention.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
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


NAME = "CPU"


def read_cpu_times() -> list[int]:
    """The aggregate "cpu" line of /proc/stat, in clock ticks."""
    with open(os.path.join(PROC, "stat"), encoding="ascii") as fh:
        for line in fh:
            if line.startswith("cpu "):
                return [int(x) for x in line.split()[1:]]
    raise ValueError("no aggregate cpu line in /proc/stat")


def main() -> int:
    parser = make_parser(
        NAME,
        "CPU usage of the whole host, sampled over a short interval from /proc/stat (Linux).",
        warning="80",
        critical="90",
    )
    parser.add_argument(
        "-s",
        "--sample",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="time between the two /proc/stat samples (default: 0.25)",
    )
    args = parser.parse_args()
    check_ranges(parser, args.warning, args.critical)
    if not 0 < args.sample <= 10:
        parser.error("--sample must be between 0 and 10 seconds")
    try:
        before = read_cpu_times()
    except (OSError, ValueError) as exc:
        return finish(NAME, UNKNOWN, f"CPU usage needs /proc/stat (Linux): {exc}")
    time.sleep(args.sample)
    after = read_cpu_times()
    # Fields: user nice system idle iowait irq softirq steal [guest guest_nice].
    # guest time is already counted in user/nice, so only the first 8 add up.
    delta = [b - a for a, b in zip(before[:8], after[:8], strict=False)]
    delta += [0] * (8 - len(delta))
    total = sum(delta)
    if total <= 0:
        return finish(NAME, UNKNOWN, "no CPU time elapsed between samples")
    user, nice, system, idle, iowait, irq, softirq, steal = delta

    def pct(ticks: int) -> float:
        return round(100.0 * ticks / total, 1)

    used = round(100.0 - pct(idle + iowait), 1)
    used = min(100.0, max(0.0, used))
    code = state_of(used, args.warning, args.critical)
    parts = {
        "user": pct(user + nice),
        "system": pct(system + irq + softirq),
        "iowait": pct(iowait),
        "steal": pct(steal),
    }
    detail = ", ".join(f"{label} {value:.1f}%" for label, value in parts.items())
    perfdata = [perf("cpu", f"{used:.1f}", "%", args.warning, args.critical, 0, 100)]
    perfdata += [perf(label, f"{v:.1f}", "%", None, None, 0, 100) for label, v in parts.items()]
    return finish(NAME, code, f"{used:.1f}% used ({detail})", perfdata)


if __name__ == "__main__":
    run(NAME, main)
