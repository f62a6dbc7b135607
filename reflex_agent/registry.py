"""The agent's current set of checks: hand-placed scripts plus scripts received from the network.

Two directories, always kept apart so the agent knows where each check came from:

* ``<scripts dir>`` itself: scripts an administrator put there by hand (trusted as they are);
* ``<scripts dir>/received/``: scripts downloaded from `config_chan`, which run only with a
  verified operator signature (`reflex_agent.sync`; it also removes any file there it cannot
  vouch for).

When one test name exists in both, the received script runs: an operator's fleet-wide push is
the newer intent than a file that was on the host before. The shadowed local file is reported
(`Catalog.shadowed`) so the daemon can log it, and `state.scripts` names the received file as
``received/<name>``, so the dashboard sees which one runs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reflex_agent.discovery import Conflict, scan
from reflex_core.protocol import ProtocolError, Rejection, ScriptEntry, test_name

__all__ = [
    "RECEIVED_DIR_NAME",
    "Catalog",
    "Check",
    "Origin",
    "build_catalog",
    "file_sha256",
    "received_dir",
]

log = logging.getLogger(__name__)

RECEIVED_DIR_NAME = "received"


class Origin(StrEnum):
    LOCAL = "local"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class Check:
    """One runnable check: test name, file, where it came from, and a hash of its bytes."""

    test: str
    path: Path
    origin: Origin
    sha256: str

    @property
    def file(self) -> str:
        """The name `state.scripts` shows: ``cpu.py``, or ``received/cpu.py``."""
        if self.origin is Origin.RECEIVED:
            return f"{RECEIVED_DIR_NAME}/{self.path.name}"
        return self.path.name

    def entry(self) -> ScriptEntry:
        return ScriptEntry(test=self.test, file=self.file, sha256=self.sha256)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A snapshot of the checks (by test name), plus what a human should hear about."""

    checks: dict[str, Check] = field(default_factory=dict)
    shadowed: tuple[tuple[Path, Path], ...] = ()  # (local file, received file that wins)
    conflicts: tuple[Conflict, ...] = ()  # same test name twice within one directory
    bad_names: tuple[Rejection, ...] = ()  # files whose stem is no valid test name

    def get(self, test: str) -> Check | None:
        return self.checks.get(test)

    def by_path(self, path: Path) -> Check | None:
        for check in self.checks.values():
            if check.path == path:
                return check
        return None

    def entries(self) -> tuple[ScriptEntry, ...]:
        return tuple(check.entry() for check in self.checks.values())

    def fingerprint(self) -> tuple[tuple[str, str, str], ...]:
        """Equal fingerprints mean `state` would report the same scripts."""
        return tuple((c.test, c.file, c.sha256) for c in self.checks.values()) + tuple(
            (r.file, r.reason, "") for r in self.bad_names
        )


def received_dir(scripts_dir: Path) -> Path:
    return scripts_dir / RECEIVED_DIR_NAME


def file_sha256(path: Path) -> str | None:
    """Hex SHA-256 of a file's bytes, or None if it cannot be read (vanished, unreadable)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(256 * 1024):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _scan_dir(
    directory: Path, origin: Origin
) -> tuple[dict[str, Check], list[Conflict], list[Rejection]]:
    try:
        result = scan(directory)
    except OSError as exc:
        log.warning("cannot read scripts dir %s: %s", directory, exc.strerror or exc)
        return {}, [], []
    checks: dict[str, Check] = {}
    bad: list[Rejection] = []
    for script in result.scripts:
        try:
            test = test_name(script.path.name)
        except ProtocolError as exc:
            name = script.path.name
            shown = name if origin is Origin.LOCAL else f"{RECEIVED_DIR_NAME}/{name}"
            bad.append(Rejection.build(shown, f"bad name: {exc}"))
            continue
        sha = file_sha256(script.path)
        if sha is None:
            continue  # deleted between the scan and the read: the watcher will tell us
        checks[test] = Check(test, script.path, origin, sha)
    return checks, list(result.conflicts), bad


def build_catalog(scripts_dir: Path) -> Catalog:
    """Scan ``scripts_dir`` and ``scripts_dir/received`` (both non-recursive) into a Catalog."""
    local, local_conflicts, local_bad = _scan_dir(scripts_dir, Origin.LOCAL)
    received, received_conflicts, received_bad = _scan_dir(
        received_dir(scripts_dir), Origin.RECEIVED
    )
    merged = dict(local)
    shadowed: list[tuple[Path, Path]] = []
    for test, check in received.items():
        if test in merged:
            shadowed.append((merged[test].path, check.path))
        merged[test] = check
    return Catalog(
        checks={test: merged[test] for test in sorted(merged)},
        shadowed=tuple(shadowed),
        conflicts=tuple(local_conflicts + received_conflicts),
        bad_names=tuple(local_bad + received_bad),
    )
