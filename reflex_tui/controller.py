"""The dashboard's side of the bus: subscribe, backfill, commands, files. No Textual.

The app runs each coroutine here in a worker; bus callbacks arrive on the same event
loop and go straight into `Ingest` (cheap, synchronous state mutations), after which
`on_change` asks the app for a (throttled) repaint. Nothing here renders or blocks.

Ignore and interval changes are sent twice on purpose: as a protocol command on
`ignore_chan` (running agents act at once) and in the device's uuid metadata `custom`
(an agent that is offline now reads it when it starts). The card shows the change as
pending until the agent's own `state` message confirms it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reflex_core.atomic import atomic_write
from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_core.errors import BusError
from reflex_core.events import (
    ConnectionEvent,
    FileEvent,
    FileInfo,
    MembershipEvent,
    Message,
    PresenceEvent,
    SentFile,
    UndecryptableMessage,
    UuidMetadataEvent,
)
from reflex_core.protocol import (
    ALL_DEVICES,
    DEVICE_WILDCARD,
    Refresh,
    RunNow,
    SetIgnore,
    SetInterval,
    device_channel,
    encode_custom,
    truncate_text,
)
from reflex_core.signing import (
    SignatureProblem,
    default_key_path,
    is_signature_file,
    load_or_create_key,
    new_version,
    resend_verified,
    send_signed,
    sign_upload,
)
from reflex_tui.ingest import TIMETOKEN_PER_SECOND, Ingest, Notice
from reflex_tui.script_sync import (
    ScriptRow,
    compare,
    due_for_resend,
    newest_remote,
    scan_local,
    sha256_bytes,
    upload_problem,
)
from reflex_tui.state import HISTORY_POINTS, HISTORY_SECONDS, Device, Fleet

if TYPE_CHECKING:  # cryptography costs ~9 MB; `reflex_core.signing` loads it when first used
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

logger = logging.getLogger(__name__)


def settle_heap() -> None:
    """Move everything alive after the backfill out of the cyclic collector's sight.

    An hour of history for a big fleet is millions of long-lived objects, and every
    full collection walks them all: 140-340 ms during which no key is handled (profiled
    under the issue-7 ingest benchmark, where these pauses were the whole key-latency
    p99). They are freed by reference counting as history rolls over, so freezing them
    loses nothing; collecting first keeps garbage of the loading phase out of the frozen
    set. One pause while "loading" is still on screen instead of one every few seconds.

    The cost: a frozen object that later becomes part of an unreachable cycle is never
    reclaimed (a deleted host's card widgets, a screen open at that moment). That is why
    it runs only while the dashboard starts, not on every later change.
    """
    gc.collect()
    gc.freeze()


HISTORY_CHANNELS_PER_BATCH = 50
"""Devices whose history is fetched and applied per step (the screen fills in as it goes)."""
INGEST_SLICE = 0.008
"""Seconds of event processing between two turns of the event loop (keys stay snappy)."""
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
"""Back-off bounds (seconds) for retrying the start-up backfill."""
INBOX_LIMIT = 100_000
"""Queued bus events at most (~50 s at 2,000 results/s); the oldest go first beyond it."""
WRITE_CONCURRENCY = 8
"""Parallel metadata writes / publishes for fleet-wide actions (I, T on 500 devices)."""


class UploadRefused(Exception):
    """The file would be refused by the agents (bad name, too large): not sent."""


@dataclass(frozen=True, slots=True)
class UploadResult:
    name: str
    sent: SentFile
    copied_to: Path | None


class Controller:
    """Owns the subscription and every request the dashboard makes."""

    def __init__(
        self,
        bus: Bus,
        fleet: Fleet,
        config: Config,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_notice: Callable[[Notice], None] = lambda notice: None,
        on_file: Callable[[FileEvent], None] = lambda event: None,
        on_member_joined: Callable[[str], None] | None = None,
    ) -> None:
        self.bus = bus
        self.fleet = fleet
        self.config = config
        self.ingest = Ingest(
            fleet, membership_channel=config.channel, ignore_chan=config.ignore_chan
        )
        self._on_change = on_change
        self._on_notice = on_notice
        self._on_file = on_file
        self._on_member_joined = on_member_joined
        self._remove_listener: Callable[[], None] | None = None
        self._remote_hashes: dict[str, str] = {}
        self._uploaded: list[str] = []
        """File ids this dashboard sent, oldest first (tie-break for same-second uploads)."""
        self._signing_key: Ed25519PrivateKey | None = None
        self._last_version: int | None = None
        self._inbox: deque[tuple[Callable[[Any], None], object]] = deque()
        self._drain_scheduled = False
        self.dropped = 0
        """Events dropped because the inbox was full (the dashboard fell far behind)."""
        self.backfilled = False
        """True once the start-up backfill finished (the screen is complete)."""
        self._reachable = asyncio.Event()
        """Set when the subscription reports the origin reachable (wakes a backfill retry)."""

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Subscribe first (so nothing published meanwhile is missed), then backfill."""
        await self.bus.start()
        self._remove_listener = self.bus.add_listener(
            on_message=self._message,
            on_presence=self._presence,
            on_membership=self._membership,
            on_uuid_metadata=self._uuid_metadata,
            on_connection=self._connection,
            on_undecryptable=self._undecryptable,
            on_file=self._file,
        )
        self._connection(self.bus.connection)
        await self.bus.subscribe(
            [DEVICE_WILDCARD, self.config.channel, self.config.config_chan],
            presence_channels=[self.config.ignore_chan],
        )
        await self.backfill_until_done()

    async def backfill_until_done(self) -> None:
        """Backfill, retrying with a growing pause while the hub/PubNub cannot be reached
        (a dashboard started before its hub connects when the hub appears)."""
        delay = RETRY_FIRST
        while True:
            self._reachable.clear()
            try:
                await self.backfill()
                return
            except BusError as exc:
                logger.warning("backfill failed: %s", exc)
                self.fleet.set_loading(f"retrying: {truncate_text(exc.message, 40)}")
                self._changed()
                # Issue 7 (reliability): wait out the back-off, but retry at once when the
                # subscription reports the origin reachable again; otherwise a hub that
                # appears after a few failures left the screen empty for up to RETRY_MAX s.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._reachable.wait()
                delay = min(delay * 2, RETRY_MAX)

    def stop(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None

    # ------------------------------------------------------------------ bus callbacks
    #
    # The SDK hands over a whole long-poll response (up to hundreds of messages) in one
    # synchronous burst. Parsing them right there would hold the event loop for tens of
    # milliseconds, and a key press would wait behind it. Events are queued instead and
    # applied in slices of INGEST_SLICE seconds, each followed by a turn of the loop, in
    # arrival order (so a membership delete never overtakes an earlier result).

    def _enqueue(self, handler: Callable[[Any], None], event: object) -> None:
        if len(self._inbox) >= INBOX_LIMIT:
            self._inbox.popleft()
            self.dropped += 1
        self._inbox.append((handler, event))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        deadline = time.perf_counter() + INGEST_SLICE
        inbox = self._inbox
        try:
            while inbox:
                handler, event = inbox.popleft()
                try:
                    handler(event)
                except Exception:  # one bad event must not stop the dashboard
                    logger.exception("could not apply %r", event)
                if time.perf_counter() > deadline:
                    break
        finally:
            self._on_change()
            if inbox:
                asyncio.get_running_loop().call_soon(self._drain)
            else:
                self._drain_scheduled = False

    def _changed(self, notice: Notice | None = None) -> None:
        if notice is not None:
            self._on_notice(notice)
        self._on_change()

    def _notify(self, notice: Notice | None) -> None:
        if notice is not None:
            self._on_notice(notice)

    def _message(self, event: Message) -> None:
        self._enqueue(lambda e: self._notify(self.ingest.message(e)), event)

    def _presence(self, event: PresenceEvent) -> None:
        self._enqueue(self.ingest.presence, event)

    def _membership(self, event: MembershipEvent) -> None:
        def apply(e: MembershipEvent) -> None:
            joined = self.ingest.membership(e)
            if joined is not None and self._on_member_joined is not None:
                self._on_member_joined(joined)

        self._enqueue(apply, event)

    def _uuid_metadata(self, event: UuidMetadataEvent) -> None:
        self._enqueue(self.ingest.uuid_metadata, event)

    def _connection(self, event: ConnectionEvent) -> None:
        self.ingest.connection(event)  # immediate: the header should never lag on this
        if event.connected:
            self._reachable.set()
        self._changed()

    def _undecryptable(self, event: UndecryptableMessage) -> None:
        self._enqueue(lambda e: self._notify(self.ingest.undecryptable(e)), event)

    def _file(self, event: FileEvent) -> None:
        if event.channel == self.config.config_chan:
            self._on_file(event)

    # ------------------------------------------------------------------ backfill

    async def backfill(self) -> None:
        """Members + metadata, who is online, and the last hour of results per device."""
        fleet = self.fleet
        fleet.set_loading("loading devices…")
        self._changed()
        members = await self.bus.get_channel_members(self.config.channel)
        ids = self.ingest.members(members)
        self._changed()
        fleet.set_loading("loading presence…")
        self.ingest.here_now(await self.bus.here_now(self.config.ignore_chan))
        self._changed()
        await self.load_history(ids)
        settle_heap()
        fleet.set_loading(None)
        self.backfilled = True
        self._changed()

    async def load_history(self, device_ids: Sequence[str]) -> int:
        """Fetch and apply up to an hour / HISTORY_POINTS messages per device."""
        applied = 0
        if not device_ids:
            return 0
        end = int((self.fleet.clock() - HISTORY_SECONDS) * TIMETOKEN_PER_SECOND)
        total = len(device_ids)
        for start in range(0, total, HISTORY_CHANNELS_PER_BATCH):
            chunk = device_ids[start : start + HISTORY_CHANNELS_PER_BATCH]
            if total > HISTORY_CHANNELS_PER_BATCH:
                self.fleet.set_loading(f"loading history {start}/{total}…")
            history = await self.bus.fetch_history(
                [device_channel(ident) for ident in chunk], end=end, limit=HISTORY_POINTS
            )
            for ident in chunk:
                applied += self.ingest.history(ident, history.get(device_channel(ident), []))
                # One device's hour is at most HISTORY_POINTS rounds, ~60 ms to parse; a
                # batch of 50 without a turn of the loop froze the keys for ~3 s at a time
                # while a big fleet's dashboard filled its graphs. During the start-up
                # backfill, settling the heap per device keeps the collector from walking
                # all history parsed so far (those full collections grew to 600 ms by 100
                # devices). Not for a device joining later: see `settle_heap`.
                if not self.backfilled:
                    settle_heap()
                await asyncio.sleep(0)
            self._changed()
        return applied

    async def load_device(self, device_id: str) -> None:
        """A device joined while we run: its name and settings, and its recent history."""
        metadata = await self.bus.get_uuid_metadata(device_id)
        if metadata is not None:
            self.ingest.metadata(device_id, metadata.name, metadata.custom)
            self._changed()
        await self.load_history([device_id])

    # ------------------------------------------------------------------ commands

    async def _publish(self, command: SetIgnore | SetInterval | Refresh | RunNow) -> None:
        await self.bus.publish(self.config.ignore_chan, command.to_wire())

    async def _write_settings(self, device: Device) -> None:
        custom = encode_custom(
            device.effective_ignore(),
            device.effective_interval(self.fleet.default_interval),
            base=device.metadata_custom,
        )
        await self.bus.set_uuid_metadata(device.id, custom=custom)
        device.metadata_custom = dict(custom)

    async def set_ignore(self, device_id: str, ignore: Iterable[str]) -> None:
        """Replace the device's ignore list: command + metadata, pending until confirmed."""
        device = self._device(device_id)
        names = tuple(sorted(set(ignore)))
        before = (device.configured_ignore, device.pending_ignore)
        device.apply_settings(names, None, pending=True)
        self.fleet.mark(device_id)
        self._changed()
        try:
            await self._publish(SetIgnore(target=device_id, ignore=names))
            await self._write_settings(device)
        except BaseException:
            device.configured_ignore, device.pending_ignore = before
            device.touch()
            self.fleet.mark(device_id)
            self._changed()
            raise

    async def set_ignore_many(self, changes: dict[str, tuple[str, ...]]) -> None:
        """`I`: each device keeps its own list, with one test added or removed."""
        await self._for_each(changes.items(), lambda item: self.set_ignore(*item))

    async def set_interval(self, device_id: str, interval: int) -> None:
        device = self._device(device_id)
        before = (device.configured_interval, device.pending_interval)
        device.apply_settings(None, interval, pending=True)
        self.fleet.mark(device_id)
        self._changed()
        try:
            await self._publish(SetInterval(target=device_id, interval=interval))
            await self._write_settings(device)
        except BaseException:
            device.configured_interval, device.pending_interval = before
            device.touch()
            self.fleet.mark(device_id)
            self._changed()
            raise

    async def set_interval_all(self, interval: int) -> None:
        """`T`: one command for every running agent, metadata for each registered one."""
        devices = self.fleet.members()
        for device in devices:
            device.apply_settings(None, interval, pending=True)
            self.fleet.mark(device.id)
        self._changed()
        await self._publish(SetInterval(target=ALL_DEVICES, interval=interval))
        await self._for_each(devices, self._write_settings)

    async def refresh(self, device_id: str | None) -> None:
        await self._publish(Refresh(target=device_id or ALL_DEVICES))

    async def run_now(self, device_id: str, test: str | None) -> None:
        await self._publish(RunNow(target=device_id, test=test))

    async def delete_host(self, device_id: str) -> bool:
        """Remove the membership; returns whether the agent was online (it may rejoin)."""
        device = self.fleet.get(device_id)
        online = bool(device and device.online) or device_id in self.fleet.online
        await self.bus.remove_channel_members(self.config.channel, [device_id])
        self.fleet.remove_member(device_id)  # the membership event will say the same
        self._changed()
        return online

    async def _for_each(self, items: Iterable[object], action: Callable[..., object]) -> None:
        semaphore = asyncio.Semaphore(WRITE_CONCURRENCY)
        errors: list[BaseException] = []

        async def one(item: object) -> None:
            async with semaphore:
                try:
                    await action(item)  # type: ignore[misc]
                except BusError as exc:
                    errors.append(exc)

        await asyncio.gather(*(one(item) for item in items))
        if errors:
            raise BusError(
                "update", f"{len(errors)} request(s) failed; first: {errors[0]}"
            ) from errors[0]

    def _device(self, device_id: str) -> Device:
        device = self.fleet.get(device_id)
        if device is None:
            raise BusError("update", f"unknown device {device_id!r}")
        return device

    # ------------------------------------------------------------------ files

    async def upload(self, path: Path) -> UploadResult:
        """Copy `path` into the local scripts dir (unless it is there) and send it to
        `config_chan`. Refuses, before any IO, names and sizes agents would refuse."""
        data = await asyncio.to_thread(path.read_bytes)
        problem = upload_problem(path.name, len(data))
        if problem:
            raise UploadRefused(f"{path.name}: {problem}")
        copied = await asyncio.to_thread(self._copy_into_scripts, path, data)
        sent = await self._send_signed(path.name, data)
        return UploadResult(path.name, sent, copied)

    async def signing_key(self) -> Ed25519PrivateKey:
        """The operator key (`signing_key` from the config, else created in the user config
        dir on first upload): agents run network scripts only when this key signed them."""
        if self._signing_key is None:
            path = default_key_path(self.config)
            self._signing_key = await asyncio.to_thread(load_or_create_key, path)
        return self._signing_key

    async def _send_signed(self, name: str, data: bytes) -> SentFile:
        """Sign (a fresh, strictly increasing version: agents refuse rollbacks) and send
        the sidecar and the script; every upload and re-send goes through here."""
        key = await self.signing_key()
        self._last_version = new_version(self._last_version)
        upload = sign_upload(key, name, data, version=self._last_version)
        sent = await send_signed(self.bus, self.config.config_chan, upload)
        self._sent(sent.id, data)
        return sent

    def _sent(self, file_id: str, data: bytes) -> None:
        self._remote_hashes[file_id] = sha256_bytes(data)
        self._uploaded.append(file_id)
        del self._uploaded[:-1000]

    def _copy_into_scripts(self, path: Path, data: bytes) -> Path | None:
        directory = Path(self.config.scripts)
        target = directory / path.name
        try:
            if target.resolve() == path.resolve():
                return None
        except OSError:
            pass
        atomic_write(target, data, mode=(path.stat().st_mode & 0o777) | 0o600)
        return target

    async def compare_scripts(self) -> list[ScriptRow]:
        """Local scripts dir vs `config_chan` (downloading same-size files to compare)."""
        local = await asyncio.to_thread(scan_local, Path(self.config.scripts))
        remote = await self._list_scripts()
        newest = newest_remote(remote, self._uploaded)
        local_by_name = {script.name: script for script in local}
        for name, info in newest.items():
            mine = local_by_name.get(name)
            if mine is None or mine.size != info.size or info.id in self._remote_hashes:
                continue
            data = await self.bus.download_file(self.config.config_chan, info.id, info.name)
            self._remote_hashes[info.id] = sha256_bytes(data)
        return compare(local, remote, self._remote_hashes, self._uploaded)

    async def upload_rows(self, rows: Iterable[ScriptRow]) -> list[str]:
        """Upload the local copies of these rows; returns the names sent."""
        sent: list[str] = []
        for row in rows:
            if row.local is None:
                continue
            await self.upload(row.local.path)
            sent.append(row.name)
        return sent

    async def resend(self, rows: Iterable[ScriptRow]) -> list[str]:
        """Send every script again: the local copy when there is one, else the remote
        bytes (downloaded), so File Sharing's retention starts over for all of them."""
        sent: list[str] = []
        for row in rows:
            if row.local is not None:
                await self.upload(row.local.path)
            elif row.remote is not None:
                if not await self._resend_remote(row.remote.id, row.remote.name):
                    continue
            else:
                continue
            sent.append(row.name)
        return sent

    async def _resend_remote(self, file_id: str, name: str) -> bool:
        """Re-send bytes taken from the channel with the signature they already carry.

        Never sign them anew: that would sign whatever an attacker uploaded, and turn a
        replayed old upload into a newer, accepted version. Files this operator key did
        not sign are skipped (and logged); their owner must re-upload them.
        """
        data = await self.bus.download_file(self.config.config_chan, file_id, name)
        key = await self.signing_key()
        try:
            sent = await resend_verified(self.bus, self.config.config_chan, key, name, data)
        except SignatureProblem as problem:
            logger.warning("not re-sending %s: %s", name, problem)
            return False
        self._sent(sent.id, data)
        return True

    async def _list_scripts(self) -> list[FileInfo]:
        """Files on `config_chan` without the `<name>.sig` sidecars (they travel with
        their script and are never shown, compared or re-sent on their own)."""
        files = await self.bus.list_files(self.config.config_chan)
        return [info for info in files if not is_signature_file(info.name)]

    async def resend_old(self) -> list[str]:
        """Re-send files older than `resend_after` days (their current remote bytes)."""
        files = await self._list_scripts()
        due = due_for_resend(
            files, self.fleet.clock(), self.config.resend_after_seconds, self._uploaded
        )
        return [info.name for info in due if await self._resend_remote(info.id, info.name)]
