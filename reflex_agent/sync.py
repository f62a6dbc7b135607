"""Scripts from the network: `config_chan` File Sharing -> ``<scripts dir>/received/``.

Every file that arrives over the network, whether announced by a live file event or found
by listing the channel (at start and every `sync_every` seconds), reaches the disk through
exactly one function, :func:`accept_remote_file`. It checks the name, the size and the
operator's signature, all before a byte is written, and it writes atomically so the script
watcher only ever sees a complete file.

Script distribution is remote code execution on every host; the rules are deliberately
strict and live in `reflex_core.filenames` / `reflex_core.signing` so the dashboard refuses
the same names before uploading and signs what agents verify:

* names with ``/``, ``\\``, ``..``, NUL or control characters, a leading ``.``, more than
  255 bytes, or not ending in ``.py``/``.sh`` are refused (a remote file never gets an
  executable bit, so only interpreter-run scripts make sense); so is a stem that is not a
  valid test name (``a,b.py``);
* files over 5 MiB are refused, by the listed size before downloading and again by the
  downloaded size (a listing is not proof);
* the file must carry an Ed25519 signature by a key in `trusted_keys` over (name, sha256,
  version): from the file event's message on the live path, else from the ``<name>.sig``
  sidecar files on the channel (the listing path has no messages). With no trusted key,
  nothing runs unless `allow_unsigned_scripts = true`. ``*.sig`` files are signatures,
  never scripts: they are not written, run or reported;
* a version older than the one already accepted for that name is a rollback (a replayed
  old upload) and refused; the accepted versions live in the local state file, so this
  holds across restarts (`ReceivedBook`);
* the target path is checked to be directly inside the received dir whatever the name.

The agent also remembers what it verified (sha256 and key per name, `ReceivedBook`), and
`FileSync.sweep` removes any file in ``received/`` that it cannot vouch for: put there by an
older agent that did not check signatures, changed since, or signed by a key that has been
removed from `trusted_keys` (so dropping a compromised key stops its scripts at the next
start or sync, not only its future uploads).

Every refusal becomes a `state.rejected` entry ``<category>: <detail>``. A download that
fails (network, a file deleted meanwhile) is not a refusal: it is logged and retried at the
next sync.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from reflex_agent.discovery import is_check_file
from reflex_agent.registry import file_sha256
from reflex_agent.state_store import StateStore, atomic_write
from reflex_core.errors import BusError
from reflex_core.events import FileEvent, FileInfo, HistoryEntry
from reflex_core.filenames import script_name_problem, script_size_problem
from reflex_core.protocol import ProtocolError, Rejection, RejectReason, test_name
from reflex_core.signing import (
    MAX_SIDECARS_PER_NAME,
    MAX_SIG_BYTES,
    SignatureProblem,
    TrustPolicy,
    check_upload,
    is_signature_document,
    is_signature_file,
    script_for_signature_file,
    signature_file_name,
)

__all__ = [
    "FileOutcome",
    "FileSource",
    "FileSync",
    "ReceivedBook",
    "RemoteFile",
    "Signatures",
    "Vouch",
    "accept_remote_file",
    "newest_per_name",
    "remote_name_problem",
]

log = logging.getLogger(__name__)

#: Refused uploads remembered by file id, so a periodic sync does not download them again.
_MAX_REMEMBERED = 1024
#: Mode of received scripts: readable, never executable (they run through their interpreter).
RECEIVED_FILE_MODE = 0o644
#: Refusals a later sidecar can cure (the sidecar arrived after the script).
_SIGNATURE_CATEGORIES = frozenset(
    {RejectReason.UNSIGNED, RejectReason.BAD_SIGNATURE, RejectReason.UNTRUSTED_KEY}
)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file on `config_chan`, from a listing (`size`, `created`) or a live event
    (`timetoken`, no size)."""

    file_id: str
    name: str
    size: int | None = None
    created: str = ""
    timetoken: int | None = None
    #: The file event's message (live path): the signature document when the sender signed.
    message: object = field(default=None, compare=False)

    @classmethod
    def from_info(cls, info: FileInfo) -> RemoteFile:
        return cls(file_id=info.id, name=info.name, size=info.size, created=info.created)

    @classmethod
    def from_event(cls, event: FileEvent) -> RemoteFile:
        return cls(
            file_id=event.file_id,
            name=event.file_name,
            timetoken=event.timetoken,
            message=event.message,
        )


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one remote file.

    Exactly one of: `rejection` (refused, report it), `error` (could not fetch or write,
    retry later), or accepted with `sha256` set (`written` tells whether the bytes on disk
    changed; an identical file is left untouched so the watcher does not re-run it).
    An accepted file has `version`/`key` from its trusted signature, or both None when it
    was let through unsigned (`allow_unsigned_scripts`).
    """

    name: str
    path: Path | None = None
    sha256: str | None = None
    written: bool = False
    rejection: Rejection | None = None
    error: str | None = None
    version: int | None = None
    key: str | None = None

    @property
    def accepted(self) -> bool:
        return self.sha256 is not None


Fetch = Callable[[RemoteFile], Awaitable[bytes]]
#: Every signature document found for a file, newest first (raw dicts/bytes, or the
#: `SignatureProblem` of one that could not be read). May raise BusError (retry later).
Signatures = Callable[[], Awaitable[Sequence[object]]]


async def no_signatures() -> Sequence[object]:
    """A `Signatures` source for a file nothing vouches for."""
    return ()


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


async def accept_remote_file(
    remote: RemoteFile,
    fetch: Fetch,
    dest_dir: Path,
    *,
    policy: TrustPolicy,
    signatures: Signatures = no_signatures,
    floor: int | None = None,
) -> FileOutcome:
    """The one path a network file takes to disk: check, verify, download, check, write.

    `policy` is required on purpose: no caller can forget the signature check. `floor` is
    the version already accepted for this name (rollback refusal). Never raises for anything
    the network or the file does (cancellation excepted).
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
        candidates = await signatures()
    except BusError as exc:
        return FileOutcome(remote.name, error=f"cannot read its signature: {exc}")
    if not candidates and not policy.allow_unsigned:
        # Refused without downloading a byte of it.
        unsigned = SignatureProblem(RejectReason.UNSIGNED, "no operator signature")
        return _reject(remote, str(unsigned))

    try:
        data = await fetch(remote)
    except BusError as exc:
        return FileOutcome(remote.name, error=f"download failed: {exc}")
    problem = script_size_problem(len(data))
    if problem is not None:
        return _reject(remote, problem)
    try:
        verdict = check_upload(candidates, remote.name, data, policy, floor)
    except SignatureProblem as refused:
        return _reject(remote, str(refused))
    if verdict.unverified is not None:
        log.warning(
            "accepting %r without a trusted signature (allow_unsigned_scripts = true): %s",
            remote.name,
            verdict.unverified,
        )

    sha = hashlib.sha256(data).hexdigest()
    accepted = FileOutcome(
        remote.name, path=target, sha256=sha, version=verdict.version, key=verdict.key
    )
    if file_sha256(target) == sha:
        return accepted
    try:
        _write(target, data)
    except OSError as exc:
        return FileOutcome(remote.name, error=f"cannot write {target}: {exc.strerror or exc}")
    return replace(accepted, written=True)


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


@dataclass(frozen=True, slots=True)
class Vouch:
    """What a received file was when the agent verified it (`key` "" = ran unsigned)."""

    sha256: str
    key: str


class ReceivedBook:
    """What this agent accepted from the network, per file name, kept in the state file.

    * the **floor**: the highest signed version accepted for a name; it never goes down,
      even when the file is removed, so a replayed older upload is always a rollback;
    * the **vouch**: sha256 and signing key of the file now in ``received/``.

    Without a store (tests) it lives in memory only. A write failure is logged and the agent
    goes on with its memory: refusing every script because the state dir is read-only would
    be worse than losing rollback protection across one restart.
    """

    def __init__(self, store: StateStore | None = None) -> None:
        self._store = store
        self._floors: dict[str, int] | None = None
        self._vouches: dict[str, Vouch] = {}
        self._warned = False

    def _load(self) -> dict[str, int]:
        if self._floors is None:
            self._floors = {}
            if self._store is not None:
                state = self._store.load()
                self._floors = dict(state.versions)
                self._vouches = {
                    name: Vouch(entry["sha256"], entry["key"])
                    for name, entry in state.received.items()
                }
        return self._floors

    def floor(self, name: str) -> int | None:
        return self._load().get(name)

    def vouch(self, name: str) -> Vouch | None:
        self._load()
        return self._vouches.get(name)

    def record(self, name: str, sha256: str, version: int | None, key: str | None) -> None:
        floors = self._load()
        vouch = Vouch(sha256, key or "")
        raised = version is not None and version > floors.get(name, -1)
        if not raised and self._vouches.get(name) == vouch:
            return  # the same upload again (every start re-checks the listing): no write
        if raised:
            assert version is not None
            floors[name] = version
        self._vouches[name] = vouch
        self._save()

    def forget(self, name: str) -> None:
        """The file is gone from ``received/``; its floor stays."""
        self._load()
        if self._vouches.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        if self._store is None:
            return
        try:
            state = self._store.load()  # keep what the daemon stores there (ignore, interval)
            state.versions = {**state.versions, **(self._floors or {})}
            state.received = {
                name: {"sha256": v.sha256, "key": v.key} for name, v in self._vouches.items()
            }
            self._store.save(state)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot write %s (%s): rollback protection will not survive a restart",
                    self._store.path,
                    exc.strerror or exc,
                )


@dataclass(slots=True)
class _Accepted:
    file_id: str
    sha256: str
    timetoken: int | None


def _category(rejection: Rejection) -> str:
    return rejection.reason.partition(":")[0]


class FileSync:
    """Keeps ``received/`` in line with `config_chan`; remembers refusals for `state`.

    Work is serialised by one lock, and a full sync lists the channel *inside* the lock: a
    live event handled before the listing is part of it, one arriving during it waits, so an
    older listing can never overwrite a newer upload.
    """

    def __init__(
        self,
        source: FileSource,
        channel: str,
        dest_dir: Path,
        *,
        policy: TrustPolicy,
        book: ReceivedBook | None = None,
    ) -> None:
        self._source = source
        self._channel = channel
        self.dest_dir = dest_dir
        self.policy = policy
        self.book = book if book is not None else ReceivedBook()
        self._lock = asyncio.Lock()
        self._accepted: dict[str, _Accepted] = {}
        self._rejected: dict[str, Rejection] = {}
        # Refusals remembered by (file id, sidecar ids), so a periodic sync does not
        # download the same upload again; new sidecars make it worth another look.
        self._refused: dict[tuple[str, tuple[str, ...]], Rejection] = {}
        self._sidecar_bytes: dict[str, bytes] = {}  # file id -> content (ids are immutable)

    @property
    def rejected(self) -> tuple[Rejection, ...]:
        return tuple(self._rejected[name] for name in sorted(self._rejected))

    async def _fetch(self, remote: RemoteFile) -> bytes:
        return await self._source.download_file(self._channel, remote.file_id, remote.name)

    # ------------------------------------------------------------------ signatures

    async def _sidecar_documents(self, sidecars: Sequence[RemoteFile]) -> list[object]:
        """The content of these ``.sig`` files, newest first (a download that fails is
        skipped; if all fail, the error propagates so the script is retried, not refused)."""
        ordered = newest_first(sidecars)[:MAX_SIDECARS_PER_NAME]
        documents: list[object] = []
        failure: BusError | None = None
        for sidecar in ordered:
            if sidecar.size is not None and sidecar.size > MAX_SIG_BYTES:
                documents.append(
                    SignatureProblem(RejectReason.BAD_SIGNATURE, "signature file too large")
                )
                continue
            data = self._sidecar_bytes.get(sidecar.file_id)
            if data is None:
                try:
                    data = await self._fetch(sidecar)
                except BusError as exc:
                    log.debug("cannot download %s: %s", sidecar.name, exc)
                    failure = failure or exc
                    continue
                _remember(self._sidecar_bytes, sidecar.file_id, data)
            documents.append(data)
        if not documents and failure is not None:
            raise failure
        return documents

    async def _listed_sidecars(self, name: str) -> list[object]:
        """Live path without a signed message: look the sidecars up on the channel."""
        wanted = signature_file_name(name)
        infos = await self._source.list_files(self._channel)
        return await self._sidecar_documents(
            [RemoteFile.from_info(i) for i in infos if i.name == wanted]
        )

    # ------------------------------------------------------------------ full sync

    async def full_sync(self) -> bool:
        """List every page of `config_chan` and fetch what is missing or different, then
        `sweep` ``received/``.

        Returns True when anything `state` reports changed (a file written or removed, a
        refusal added/removed). Raises BusError when the listing itself fails (the sweep,
        which needs no network, has still run).
        """
        async with self._lock:
            before = dict(self._rejected)
            try:
                changed = await self._sync_locked()
            except BusError:
                self.sweep()
                raise
            changed |= self.sweep()
            return changed or before != self._rejected

    async def _sync_locked(self) -> bool:
        infos = await self._source.list_files(self._channel)
        scripts: list[FileInfo] = []
        sidecars: dict[str, list[RemoteFile]] = {}
        for info in infos:
            if is_signature_file(info.name):
                script = script_for_signature_file(info.name)
                if script is not None:
                    sidecars.setdefault(script, []).append(RemoteFile.from_info(info))
            else:
                scripts.append(info)
        uploaded = await self._upload_times(scripts)
        # Refusals are rebuilt from the listing: a bad file deleted from the channel
        # stops being reported.
        self._rejected = {}
        changed = False
        listed = (
            replace(RemoteFile.from_info(info), timetoken=uploaded.get(info.id)) for info in scripts
        )
        for remote in newest_per_name(listed):
            if self._unchanged(remote):
                continue
            mine = sidecars.get(remote.name, [])
            memo = (remote.file_id, tuple(sorted(s.file_id for s in mine)))
            refused = self._refused.get(memo)
            if refused is not None:  # the same upload, same sidecars: no second download
                self._rejected[remote.name] = refused
                continue
            outcome = await accept_remote_file(
                remote,
                self._fetch,
                self.dest_dir,
                policy=self.policy,
                signatures=functools.partial(self._sidecar_documents, mine),
                floor=self.book.floor(remote.name),
            )
            changed |= self._record(remote, outcome, memo)
        return changed

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

    # ------------------------------------------------------------------ live events

    async def on_event(self, remote: RemoteFile) -> bool:
        """A live file event. Returns True when `state` would change."""
        if is_signature_file(remote.name):
            return await self._on_sidecar(remote)
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
            signatures: Signatures
            if is_signature_document(remote.message):
                signatures = functools.partial(_constant, [remote.message])
            else:
                signatures = functools.partial(self._listed_sidecars, remote.name)
            outcome = await accept_remote_file(
                remote,
                self._fetch,
                self.dest_dir,
                policy=self.policy,
                signatures=signatures,
                floor=self.book.floor(remote.name),
            )
            changed = self._record(remote, outcome, (remote.file_id, ("event",)))
            return changed or before != self._rejected.get(remote.name)

    async def _on_sidecar(self, remote: RemoteFile) -> bool:
        """A signature arrived on its own. It matters only to a script refused for want of
        one (an uploader that sent the sidecar after the script): then sync again."""
        script = script_for_signature_file(remote.name)
        refused = self._rejected.get(script) if script is not None else None
        if refused is None or _category(refused) not in _SIGNATURE_CATEGORIES:
            return False
        async with self._lock:
            before = dict(self._rejected)
            changed = await self._sync_locked()
            return changed or before != self._rejected

    # ------------------------------------------------------------------ bookkeeping

    def _unchanged(self, remote: RemoteFile) -> bool:
        """Already accepted this very upload and the file on disk is still what we wrote."""
        known = self._accepted.get(remote.name)
        if known is None or known.file_id != remote.file_id:
            return False
        return file_sha256(self.dest_dir / remote.name) == known.sha256

    def _record(
        self, remote: RemoteFile, outcome: FileOutcome, memo: tuple[str, tuple[str, ...]]
    ) -> bool:
        if outcome.rejection is not None:
            self._rejected[remote.name] = outcome.rejection
            _remember(self._refused, memo, outcome.rejection)
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
        self.book.record(remote.name, outcome.sha256, outcome.version, outcome.key)
        if outcome.written:
            log.info(
                "received script %s (sha256 %s, %s)",
                remote.name,
                outcome.sha256[:12],
                f"version {outcome.version}" if outcome.version is not None else "unsigned",
            )
        return outcome.written

    def sweep(self) -> bool:
        """Remove every script in ``received/`` this agent cannot vouch for; True if any was.

        Vouched means: the file's sha256 is the one recorded when its signature verified,
        and the signing key is still trusted. Everything else goes (and is reported): files
        from before signatures were required, edited since, or signed by a key taken out of
        `trusted_keys`. Needs no network, so it also runs when the listing fails and before
        ``join --once``. With `allow_unsigned_scripts` nothing is removed.
        """
        if self.policy.allow_unsigned:
            return False
        try:
            entries = list(os.scandir(self.dest_dir))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            log.warning("cannot read %s: %s", self.dest_dir, exc.strerror or exc)
            return False
        removed = False
        for entry in entries:
            path = Path(entry.path)
            if not is_check_file(path):
                continue
            problem = self._distrust(entry.name, path)
            if problem is None:
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error("cannot remove untrusted %s: %s", path, exc.strerror or exc)
                continue
            removed = True
            self.book.forget(entry.name)
            self._accepted.pop(entry.name, None)
            self._rejected.setdefault(entry.name, Rejection.build(entry.name, str(problem)))
            log.warning("removed received script %s: %s", entry.name, problem)
        return removed

    def _distrust(self, name: str, path: Path) -> SignatureProblem | None:
        vouch = self.book.vouch(name)
        if vouch is None:
            return SignatureProblem(
                RejectReason.UNSIGNED, "no verified upload on record for this file; removed"
            )
        if vouch.sha256 != file_sha256(path):
            return SignatureProblem(
                RejectReason.BAD_SIGNATURE, "changed since its signature was verified; removed"
            )
        if not vouch.key:
            return SignatureProblem(
                RejectReason.UNSIGNED, "it was accepted unsigned (allow_unsigned_scripts); removed"
            )
        if vouch.key not in self.policy.trusted_keys:
            return SignatureProblem(
                RejectReason.UNTRUSTED_KEY, f"{vouch.key} is no longer in trusted_keys; removed"
            )
        return None


async def _constant(documents: Sequence[object]) -> Sequence[object]:
    return documents


def newest_first(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """Uploads newest first: by `created`, then timetoken, then later in the listing."""
    indexed = sorted(
        enumerate(files), key=lambda item: (item[1].created, item[1].timetoken or 0, item[0])
    )
    return [remote for _, remote in reversed(indexed)]


def _remember(memory: dict[Any, Any], key: object, value: object) -> None:
    """Insert into a bounded dict, forgetting the oldest entry first."""
    if key not in memory and len(memory) >= _MAX_REMEMBERED:
        memory.pop(next(iter(memory)))
    memory[key] = value
