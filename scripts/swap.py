#!/usr/bin/env python3
"""Swap usage check for Reflex Observer (Monitoring Plugins convention).

Linux (/proc/meminfo) only; elsewhere it answers UNKNOWN. No swap is OK at 0%.

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


NAME = "SWAP"


def read_meminfo() -> dict[str, int]:
    """/proc/meminfo as {field: bytes}."""
    info: dict[str, int] = {}
    with open(os.path.join(PROC, "meminfo"), encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
                info[key.strip()] = int(parts[0]) * scale
    return info


def gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


def main() -> int:
    parser = make_parser(
        NAME,
        "Swap in use as a percentage of total swap, from /proc/meminfo (Linux)."
        " A host without swap reports OK at 0%.",
        warning="50",
        critical="80",
    )
    args = parser.parse_args()
    check_ranges(parser, args.warning, args.critical)
    try:
        info = read_meminfo()
    except OSError as exc:
        return finish(NAME, UNKNOWN, f"swap usage needs /proc/meminfo (Linux): {exc}")
    if "SwapTotal" not in info:
        return finish(NAME, UNKNOWN, "no SwapTotal in /proc/meminfo")
    total = info["SwapTotal"]
    free = min(max(info.get("SwapFree", total), 0), total)
    used = total - free
    used_pct = round(100.0 * used / total, 1) if total > 0 else 0.0
    code = state_of(used_pct, args.warning, args.critical)
    if total > 0:
        text = f"{used_pct:.1f}% used ({gib(used)} of {gib(total)})"
    else:
        text = "0.0% used (no swap configured)"
    return finish(
        NAME,
        code,
        text,
        [
            perf("swap", f"{used_pct:.1f}", "%", args.warning, args.critical, 0, 100),
            perf("used", str(used), "B", None, None, 0, total),
        ],
    )


if __name__ == "__main__":
    run(NAME, main)
