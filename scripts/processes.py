#!/usr/bin/env python3
"""Process count check for Reflex Observer (Monitoring Plugins convention).

Counts processes from /proc (Linux) or ps (macOS, BSD); zombies go in the perfdata.

Standalone: standard library only, so it can be copied to any host and run by
hand. Run with --help for options; scripts/README.md explains the convention.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
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


NAME = "PROCS"


def from_proc() -> tuple[int, int] | None:
    """(processes, zombies) from /proc, or None when there is no usable /proc."""
    try:
        names = [n for n in os.listdir(PROC) if n.isdigit()]
    except OSError:
        return None
    if not names:
        return None
    total = zombies = 0
    for name in names:
        try:
            with open(os.path.join(PROC, name, "stat"), "rb") as fh:
                data = fh.read()
        except OSError:
            continue  # exited while we looked: not a process any more
        total += 1
        # The state follows the command name, which is in parentheses and may
        # itself contain spaces and parentheses: split after the last ")".
        state = data[data.rfind(b")") + 1 :].split()[:1]
        if state == [b"Z"]:
            zombies += 1
    return total, zombies


def from_ps() -> tuple[int, int] | None:
    """(processes, zombies) from ``ps`` (macOS, BSD), or None without ps."""
    ps = shutil.which("ps")
    if ps is None:
        return None
    try:
        done = subprocess.run(
            [ps, "-A", "-o", "stat="], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    states = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    # Our own ps is one of them; it does not exist once we report.
    total = max(0, len(states) - 1)
    return total, sum(1 for s in states if s.startswith("Z"))


def main() -> int:
    parser = make_parser(
        NAME,
        "Number of processes on the host (from /proc, or ps where there is no /proc),"
        " with the number of zombies in the perfdata.",
        warning="1500",
        critical="3000",
    )
    args = parser.parse_args()
    check_ranges(parser, args.warning, args.critical)
    counts = from_proc() or from_ps()
    if counts is None:
        return finish(NAME, UNKNOWN, "cannot count processes: no /proc and no ps")
    total, zombies = counts
    code = state_of(total, args.warning, args.critical)
    text = f"{total} processes, {zombies} zombie" + ("" if zombies == 1 else "s")
    return finish(
        NAME,
        code,
        text,
        [
            perf("procs", str(total), "", args.warning, args.critical, 0),
            perf("zombies", str(zombies), "", None, None, 0),
        ],
    )


if __name__ == "__main__":
    run(NAME, main)
