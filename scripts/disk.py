#!/usr/bin/env python3
"""Disk space check for Reflex Observer (Monitoring Plugins convention).

Works wherever Python runs (shutil.disk_usage). Checks / unless given a path.

Standalone: standard library only, so it can be copied to any host and run by
hand. Run with --help for options; scripts/README.md explains the convention.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
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


NAME = "DISK"


def gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


def main() -> int:
    parser = make_parser(
        NAME,
        "Disk space in use on the file system holding PATH (default /), as df counts it:"
        " used / (used + available to unprivileged users).",
        warning="80",
        critical="90",
    )
    parser.add_argument("-p", "--path", help="a path on the file system to check (default: /)")
    parser.add_argument("path_arg", nargs="?", metavar="PATH", help="same as --path")
    args = parser.parse_args()
    check_ranges(parser, args.warning, args.critical)
    if args.path and args.path_arg and args.path != args.path_arg:
        parser.error("give the path once, with --path or as an argument")
    path = args.path or args.path_arg or "/"
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return finish(NAME, UNKNOWN, f"cannot read {path}: {exc.strerror or exc}")
    capacity = usage.used + usage.free  # what df's Use% divides by (reserved blocks excluded)
    if capacity <= 0:
        return finish(NAME, UNKNOWN, f"{path} reports no capacity")
    used_pct = round(100.0 * usage.used / capacity, 1)
    code = state_of(used_pct, args.warning, args.critical)
    text = (
        f"{path} {used_pct:.1f}% used"
        f" ({gib(usage.used)} of {gib(capacity)}, {gib(usage.free)} free)"
    )
    perfdata = [
        perf("disk", f"{used_pct:.1f}", "%", args.warning, args.critical, 0, 100),
        perf("used", str(usage.used), "B", None, None, 0, capacity),
        perf("free", str(usage.free), "B", None, None, 0, capacity),
    ]
    statvfs = getattr(os, "statvfs", None)
    if statvfs is not None:
        try:
            st = statvfs(path)
        except OSError:
            st = None
        if st is not None and st.f_files > 0:
            inodes_pct = round(100.0 * (st.f_files - st.f_ffree) / st.f_files, 1)
            perfdata.append(perf("inodes", f"{inodes_pct:.1f}", "%", None, None, 0, 100))
    return finish(NAME, code, text, perfdata)


if __name__ == "__main__":
    run(NAME, main)
