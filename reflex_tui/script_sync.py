"""Local scripts dir vs files on `config_chan`: pure comparison and upload checks.

No Textual, no PubNub: the controller does the listing and downloading, this module
decides what the rows say (local only / remote only / differs / same) and which files
an upload or a re-send concerns, so both are unit-testable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from reflex_core.events import FileInfo
from reflex_core.filenames import ALLOWED_SUFFIXES, script_name_problem, script_size_problem
from reflex_core.ids import ProtocolError, test_name


class SyncStatus(StrEnum):
    LOCAL_ONLY = "local only"
    REMOTE_ONLY = "remote only"
    DIFFERS = "differs"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class LocalScript:
    name: str
    path: Path
    size: int
    mtime: float
    sha256: str


@dataclass(frozen=True, slots=True)
class ScriptRow:
    """One line of the scripts screen."""

    name: str
    status: SyncStatus
    local: LocalScript | None
    remote: FileInfo | None
    remote_created: float | None

    @property
    def needs_upload(self) -> bool:
        return self.status in (SyncStatus.LOCAL_ONLY, SyncStatus.DIFFERS)


def upload_problem(name: str, size: int) -> str | None:
    """Why an agent would refuse this file (checked before uploading), or None."""
    problem = script_name_problem(name)
    if problem:
        return problem
    try:
        test_name(name)
    except ProtocolError as exc:
        return f"bad name: {exc}"
    return script_size_problem(size)


def is_script_candidate(path: Path) -> bool:
    """What the upload browser and the scripts screen show: .py / .sh files."""
    return path.suffix in ALLOWED_SUFFIXES


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scan_local(directory: Path) -> list[LocalScript]:
    """Scripts in the local scripts dir (non-recursive, like the agent), by name."""
    found: list[LocalScript] = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        if not path.is_file() or not is_script_candidate(path):
            continue
        if script_name_problem(path.name):
            continue
        try:
            data = path.read_bytes()
            stat = path.stat()
        except OSError:
            continue
        found.append(LocalScript(path.name, path, len(data), stat.st_mtime, sha256_bytes(data)))
    return found


def parse_created(text: str) -> float | None:
    """File Sharing's `created` (`2024-05-01T12:00:00Z`, maybe with fractions) -> unix."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def newest_remote(files: Iterable[FileInfo], recent: Sequence[str] = ()) -> dict[str, FileInfo]:
    """The newest upload of each name (a re-send leaves the older copies in place).

    `created` has one-second resolution, so two uploads of a name within a second tie;
    `recent` (ids this dashboard uploaded, oldest first) breaks ties in favour of the
    later upload, and the file id makes any remaining tie deterministic.
    """
    order = {file_id: index for index, file_id in enumerate(recent)}

    def rank(info: FileInfo) -> tuple[float, int, str]:
        return (parse_created(info.created) or 0.0, order.get(info.id, -1), info.id)

    newest: dict[str, FileInfo] = {}
    for info in files:
        current = newest.get(info.name)
        if current is None or rank(info) > rank(current):
            newest[info.name] = info
    return newest


def compare(
    local: Iterable[LocalScript],
    remote: Iterable[FileInfo],
    remote_sha256: dict[str, str],
    recent: Sequence[str] = (),
) -> list[ScriptRow]:
    """Rows by name. `remote_sha256` maps file id -> sha256 for downloaded remote files;
    a remote file with the local size but no known hash counts as differing."""
    local_by_name = {script.name: script for script in local}
    remote_by_name = newest_remote(remote, recent)
    rows: list[ScriptRow] = []
    for name in sorted(set(local_by_name) | set(remote_by_name)):
        mine, theirs = local_by_name.get(name), remote_by_name.get(name)
        if mine is None:
            status = SyncStatus.REMOTE_ONLY
        elif theirs is None:
            status = SyncStatus.LOCAL_ONLY
        elif theirs.size == mine.size and remote_sha256.get(theirs.id) == mine.sha256:
            status = SyncStatus.SAME
        else:
            status = SyncStatus.DIFFERS
        created = parse_created(theirs.created) if theirs is not None else None
        rows.append(ScriptRow(name, status, mine, theirs, created))
    return rows


def due_for_resend(
    files: Iterable[FileInfo], now: float, max_age: float, recent: Sequence[str] = ()
) -> list[FileInfo]:
    """Newest copies older than `max_age` seconds (File Sharing deletes files after its
    retention period, so they must be sent again before that)."""
    due = []
    for info in newest_remote(files, recent).values():
        created = parse_created(info.created)
        if created is not None and now - created > max_age:
            due.append(info)
    return sorted(due, key=lambda info: info.name)
