"""Scripts from the network: `config_chan` File Sharing -> ``<scripts dir>/received/``.

Every file that arrives over the network, whether announced by a live file event or found
by listing the channel (at start and every `sync_every` seconds), reaches the disk through
exactly one function, :func:`accept_remote_file`. It checks the name, the size, and (issue 6)
will check the operator's signature, all before a byte is written, and it writes atomically
so the script watcher only ever sees a complete file.

Script distribution is remote code execution on every host; the rules are deliberately
strict and live in `reflex_core.filenames` so the dashboard refuses the same names before
uploading:

* names with ``/``, ``\\``, ``..``, NUL or control characters, a leading ``.``, more than
  255 bytes, or not ending in ``.py``/``.sh`` are refused (a remote file never gets an
  executable bit, so only interpreter-run scripts make sense); so is a stem that is not a
  valid test name (``a,b.py``);
* files over 5 MiB are refused, by the listed size before downloading and again by the
  downloaded size (a listing is not proof);
* the target path is checked to be directly inside the received dir whatever the name.

Every refusal becomes a `state.rejected` entry. A download that fails (network, a file deleted
meanwhile) is not a refusal: it is logged and retried at the next sync.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from reflex_agent.registry import file_sha256
from reflex_agent.state_store import atomic_write
from reflex_core.errors import BusError
from reflex_core.events import FileEvent, FileInfo, HistoryEntry
from reflex_core.filenames import script_name_problem, script_size_problem
from reflex_core.protocol import ProtocolError, Rejection, test_name

__all__ = [
    "FileOutcome",
    "FileSource",
    "FileSync",
    "RemoteFile",
    "accept_remote_file",
    "newest_per_name",
    "remote_name_problem",
]

log = logging.getLogger(__name__)

#: Refused uploads remembered by file id, so a periodic sync does not download them again.
_MAX_REMEMBERED = 1024
#: Mode of received scripts: readable, never executable (they run through their interpreter).
RECEIVED_FILE_MODE = 0o644


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file on `config_chan`, from a listing (`size`, `created`) or a live event
    (`timetoken`, no size)."""

    file_id: str
    name: str
    size: int | None = None
    created: str = ""
    timetoken: int | None = None

    @classmethod
    def from_info(cls, info: FileInfo) -> RemoteFile:
        return cls(file_id=info.id, name=info.name, size=info.size, created=info.created)

    @classmethod
    def from_event(cls, event: FileEvent) -> RemoteFile:
        return cls(file_id=event.file_id, name=event.file_name, timetoken=event.timetoken)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one remote file.

    Exactly one of: `rejection` (refused, report it), `error` (could not fetch or write,
    retry later), or accepted with `sha256` set (`written` tells whether the bytes on disk
    changed; an identical file is left untouched so the watcher does not re-run it).
    """

    name: str
    path: Path | None = None
    sha256: str | None = None
    written: bool = False
    rejection: Rejection | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.sha256 is not None


Fetch = Callable[[RemoteFile], Awaitable[bytes]]


def remote_name_problem(name: object) -> str | None:
    """Why a remote file name is refused (`bad name: ...`), or None."""
    problem = script_name_problem(name)
    if problem is not None:
        return problem
    assert isinstance(name, str)
    try:
        test_name(name)
    except ProtocolError as exc:
        return f"bad name: {exc}"
    return None


def _reject(remote: RemoteFile, reason: str) -> FileOutcome:
    return FileOutcome(remote.name, rejection=Rejection.build(str(remote.name), reason))


def _target(dest_dir: Path, name: str) -> Path | None:
    """``dest_dir/name`` if that is a direct child of `dest_dir`, else None (defence in
    depth: the name check already refuses separators and ``..``)."""
    target = dest_dir / name
    if os.path.dirname(os.path.normpath(target)) != os.path.normpath(dest_dir):
        return None
    if target.name != name:
        return None
    return target


async def accept_remote_file(remote: RemoteFile, fetch: Fetch, dest_dir: Path) -> FileOutcome:
    """The one path a network file takes to disk: check, download, check, write atomically.

    Never raises for anything the network or the file does (cancellation excepted).
    """
    problem = remote_name_problem(remote.name)
    if problem is not None:
        return _reject(remote, problem)
    if remote.size is not None:
        problem = script_size_problem(remote.size)
        if problem is not None:
            return _reject(remote, problem)
    target = _target(dest_dir, remote.name)
    if target is None:  # pragma: no cover - unreachable after the name check
        return _reject(remote, "bad name: would be written outside the scripts dir")

    try:
        data = await fetch(remote)
    except BusError as exc:
        return FileOutcome(remote.name, error=f"download failed: {exc}")
    problem = script_size_problem(len(data))
    if problem is not None:
        return _reject(remote, problem)

    # Issue 6 slots in here: verify the operator's signature over (name, sha256, version)
    # and refuse (unsigned / bad signature / untrusted key / rollback) before any write.

    sha = hashlib.sha256(data).hexdigest()
    if file_sha256(target) == sha:
        return FileOutcome(remote.name, path=target, sha256=sha, written=False)
    try:
        _write(target, data)
    except OSError as exc:
        return FileOutcome(remote.name, error=f"cannot write {target}: {exc.strerror or exc}")
    return FileOutcome(remote.name, path=target, sha256=sha, written=True)


def _write(target: Path, data: bytes) -> None:
    """Synchronous on purpose: a rename in one directory is atomic and quick, and a thread
    would buy nothing for files of at most 5 MiB arriving a few times a day."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data, mode=RECEIVED_FILE_MODE)


def newest_per_name(files: Iterable[RemoteFile]) -> list[RemoteFile]:
    """One file per name: the most recent upload. Sorted by name, so a sync is processed
    in a stable order.

    "Most recent" is the latest `created`; `created` has whole seconds on some servers, so
    two uploads within one second tie, and then the file message's timetoken decides (set
    from history by `FileSync`), and failing that the listing order (last wins).
    """
    newest: dict[str, tuple[tuple[str, int, int], RemoteFile]] = {}
    for index, remote in enumerate(files):
        key = (remote.created, remote.timetoken or 0, index)
        current = newest.get(remote.name)
        if current is None or key >= current[0]:
            newest[remote.name] = (key, remote)
    return [newest[name][1] for name in sorted(newest)]


class FileSource(Protocol):
    """The part of `reflex_core.bus.Bus` file sync uses."""

    async def list_files(self, channel: str) -> list[FileInfo]: ...

    async def download_file(self, channel: str, file_id: str, name: str) -> bytes: ...

    async def fetch_history(
        self, channels: str, *, limit: int | None = 100
    ) -> dict[str, list[HistoryEntry]]: ...


@dataclass(slots=True)
class _Accepted:
    file_id: str
    sha256: str
    timetoken: int | None


class FileSync:
    """Keeps ``received/`` in line with `config_chan`; remembers refusals for `state`.

    Work is serialised by one lock, and a full sync lists the channel *inside* the lock: a
    live event handled before the listing is part of it, one arriving during it waits, so an
    older listing can never overwrite a newer upload.
    """

    def __init__(self, source: FileSource, channel: str, dest_dir: Path) -> None:
        self._source = source
        self._channel = channel
        self.dest_dir = dest_dir
        self._lock = asyncio.Lock()
        self._accepted: dict[str, _Accepted] = {}
        self._rejected: dict[str, Rejection] = {}
        self._refused_ids: dict[str, Rejection] = {}  # file id -> why (bounded below)

    @property
    def rejected(self) -> tuple[Rejection, ...]:
        return tuple(self._rejected[name] for name in sorted(self._rejected))

    async def _fetch(self, remote: RemoteFile) -> bytes:
        return await self._source.download_file(self._channel, remote.file_id, remote.name)

    async def full_sync(self) -> bool:
        """List every page of `config_chan` and fetch what is missing or different.

        Returns True when anything `state` reports changed (a file written or a refusal
        added/removed). Raises BusError when the listing itself fails.
        """
        async with self._lock:
            infos = await self._source.list_files(self._channel)
            uploaded = await self._upload_times(infos)
            before = dict(self._rejected)
            # Refusals are rebuilt from the listing: a bad file deleted from the channel
            # stops being reported.
            self._rejected = {}
            changed = False
            listed = (
                replace(RemoteFile.from_info(info), timetoken=uploaded.get(info.id))
                for info in infos
            )
            for remote in newest_per_name(listed):
                if self._unchanged(remote):
                    continue
                refused = self._refused_ids.get(remote.file_id)
                if refused is not None:  # the same upload again: no second download
                    self._rejected[remote.name] = refused
                    continue
                changed |= self._record(
                    remote, await accept_remote_file(remote, self._fetch, self.dest_dir)
                )
            return changed or before != self._rejected

    async def _upload_times(self, infos: list[FileInfo]) -> dict[str, int]:
        """file id -> timetoken of its file message, only needed (and only fetched) when
        two listed uploads of one name share a `created` value. Best effort: without
        history (disabled on the keyset, expired) the listing order decides."""
        keys = [(info.name, info.created) for info in infos]
        if len(set(keys)) == len(keys):
            return {}
        try:
            history = await self._source.fetch_history(self._channel, limit=500)
        except BusError as exc:
            log.debug(
                "no history for %s (%s): same-second uploads ordered by listing", self._channel, exc
            )
            return {}
        times: dict[str, int] = {}
        for entry in history.get(self._channel, []):
            file = entry.payload.get("file") if isinstance(entry.payload, dict) else None
            if entry.is_file and isinstance(file, dict) and isinstance(file.get("id"), str):
                times[file["id"]] = entry.timetoken
        return times

    async def on_event(self, remote: RemoteFile) -> bool:
        """A live file event. Returns True when `state` would change."""
        async with self._lock:
            known = self._accepted.get(remote.name)
            if known is not None and known.file_id == remote.file_id:
                return False  # a duplicate announcement of what we already have
            if (
                known is not None
                and known.timetoken is not None
                and remote.timetoken is not None
                and remote.timetoken < known.timetoken
            ):
                log.info("ignored an older upload of %r (a newer one is in place)", remote.name)
                return False
            before = self._rejected.get(remote.name)
            outcome = await accept_remote_file(remote, self._fetch, self.dest_dir)
            changed = self._record(remote, outcome)
            return changed or before != self._rejected.get(remote.name)

    def _unchanged(self, remote: RemoteFile) -> bool:
        """Already accepted this very upload and the file on disk is still what we wrote."""
        known = self._accepted.get(remote.name)
        if known is None or known.file_id != remote.file_id:
            return False
        return file_sha256(self.dest_dir / remote.name) == known.sha256

    def _record(self, remote: RemoteFile, outcome: FileOutcome) -> bool:
        if outcome.rejection is not None:
            self._rejected[remote.name] = outcome.rejection
            if len(self._refused_ids) >= _MAX_REMEMBERED:
                self._refused_ids.pop(next(iter(self._refused_ids)))
            self._refused_ids[remote.file_id] = outcome.rejection
            log.warning(
                "refused script %r from %s: %s",
                remote.name,
                self._channel,
                outcome.rejection.reason,
            )
            return False
        if outcome.error is not None:
            log.warning(
                "script %r from %s: %s (will retry at the next sync)",
                remote.name,
                self._channel,
                outcome.error,
            )
            return False
        assert outcome.sha256 is not None
        self._rejected.pop(remote.name, None)
        self._accepted[remote.name] = _Accepted(remote.file_id, outcome.sha256, remote.timetoken)
        if outcome.written:
            log.info("received script %s (sha256 %s)", remote.name, outcome.sha256[:12])
        return outcome.written
