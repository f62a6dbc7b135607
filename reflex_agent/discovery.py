"""Which files in the scripts directory are checks, and under what test name.

A check is ``*.py`` (run with the agent's Python), ``*.sh`` (run with /bin/sh)
or any other regular file with an executable bit (run directly). Everything
that editors, package managers and our own atomic writes leave lying around is
skipped by name, so a half-written download or ``cpu.py~`` never runs and
never shows up on the dashboard.

The rules exist once, here: the watcher filters events with
:func:`is_candidate_name`, the file sync writes temp files named by
:data:`ATOMIC_TEMP_PREFIX` / :data:`ATOMIC_TEMP_SUFFIX`, and a full scan uses
:func:`scan`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from reflex_core import atomic

__all__ = [
    "ATOMIC_TEMP_PREFIX",
    "ATOMIC_TEMP_SUFFIX",
    "IGNORED_SUFFIXES",
    "TEMP_NAME_RE",
    "Conflict",
    "ScanResult",
    "Script",
    "discover",
    "is_candidate_name",
    "is_check_file",
    "is_temp_name",
    "scan",
    "script_test_name",
]

ATOMIC_TEMP_PREFIX = atomic.TEMP_PREFIX
ATOMIC_TEMP_SUFFIX = atomic.TEMP_SUFFIX
"""Name temp files ``f"{ATOMIC_TEMP_PREFIX}<anything>{ATOMIC_TEMP_SUFFIX}"``, e.g. with
``tempfile.mkstemp(dir=scripts_dir, prefix=ATOMIC_TEMP_PREFIX, suffix=ATOMIC_TEMP_SUFFIX)``,
then ``os.replace`` onto the final name. Such names are never checks."""

TEMP_NAME_RE = re.compile(
    rf"^{re.escape(ATOMIC_TEMP_PREFIX)}.*{re.escape(ATOMIC_TEMP_SUFFIX)}$", re.DOTALL
)
"""Matches the temp names of our own atomic writes (see :data:`ATOMIC_TEMP_PREFIX`)."""

IGNORED_SUFFIXES: tuple[str, ...] = (
    "~",  # emacs/vim/gedit backups: cpu.py~
    ".swp",
    ".swo",
    ".swx",  # vim swap files
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".crdownload",  # unfinished downloads / writes
    ".bak",
    ".orig",
    ".rej",  # backups, patch leftovers (often keep the exec bit)
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-dist",
    ".rpmnew",
    ".rpmsave",  # package manager leftovers
    ".disabled",  # rename a check to *.disabled to switch it off without deleting it
)
"""Name endings that are never checks, whatever their mode (compared case-insensitively)."""

_SCRIPT_SUFFIXES = (".py", ".sh")


@dataclass(frozen=True, order=True, slots=True)
class Script:
    """A check: its test name (the key on the wire) and the file that runs."""

    test: str
    path: Path


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two files map to one test name; ``kept`` runs, ``skipped`` does not."""

    test: str
    kept: Path
    skipped: Path


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The checks found (sorted by test name) and the name clashes to report."""

    scripts: list[Script] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def script_test_name(path: Path | str) -> str:
    """The test name of a script file: its stem, lowercased (``Disk.PY`` -> ``disk``)."""
    return Path(path).stem.lower()


def is_temp_name(name: str) -> bool:
    """True for our own atomic-write temp names (the watcher must not act on them)."""
    return TEMP_NAME_RE.match(name) is not None


def is_candidate_name(name: str) -> bool:
    """Could a file with this name be a check? (Name rules only, no file system access.)

    False for dotfiles (which covers our temp files), ``README*``, editor and
    package-manager leftovers, emacs autosaves (``#x#``) and vim's ``4913``
    probe. A True answer still needs :func:`is_check_file` for the mode.
    """
    if not name or name.startswith(".") or "/" in name or "\0" in name:
        return False
    lower = name.lower()
    if lower.startswith("readme"):
        return False
    if lower.endswith(IGNORED_SUFFIXES):
        return False
    if name.startswith("#") and name.endswith("#"):
        return False
    # vim writes and deletes "4913" to test that the directory is writable
    return name != "4913"


def _is_check(name: str, st: os.stat_result) -> bool:
    if not stat.S_ISREG(st.st_mode):
        return False
    if name.lower().endswith(_SCRIPT_SUFFIXES):
        return True
    return bool(st.st_mode & 0o111)


def is_check_file(path: Path) -> bool:
    """Is this path a check right now? Follows symlinks; False if it vanished."""
    if not is_candidate_name(path.name):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return _is_check(path.name, st)


def _preference(path: Path) -> tuple[int, str]:
    """Order among files that share a test name: .py, then .sh, then others; then by name.

    Deterministic across hosts and file systems (never directory order), so
    every agent in a fleet picks the same file.
    """
    suffix = path.suffix.lower()
    rank = 0 if suffix == ".py" else 1 if suffix == ".sh" else 2
    return rank, path.name


def scan(scripts_dir: Path) -> ScanResult:
    """List the checks in ``scripts_dir`` (not recursive) and any test-name conflicts.

    A missing directory has no checks. Other errors reading the directory
    (permissions) propagate: the caller decides how loudly to report them.
    """
    try:
        entries = list(os.scandir(scripts_dir))
    except (FileNotFoundError, NotADirectoryError):
        return ScanResult()
    by_test: dict[str, list[Path]] = {}
    for entry in entries:
        if not is_candidate_name(entry.name):
            continue
        try:
            st = entry.stat()  # follows symlinks: a link to a script is a script
        except OSError:
            continue  # dangling symlink, or deleted while we looked
        if _is_check(entry.name, st):
            by_test.setdefault(script_test_name(entry.name), []).append(Path(entry.path))
    scripts: list[Script] = []
    conflicts: list[Conflict] = []
    for test in sorted(by_test):
        paths = sorted(by_test[test], key=_preference)
        scripts.append(Script(test, paths[0]))
        conflicts.extend(Conflict(test, paths[0], other) for other in paths[1:])
    return ScanResult(scripts=scripts, conflicts=conflicts)


def discover(scripts_dir: Path) -> list[Script]:
    """The checks in ``scripts_dir``, sorted by test name (conflicts resolved silently).

    Use :func:`scan` to also get the conflicts for logging or ``state``.
    """
    return scan(scripts_dir).scripts
