"""The one async facade over the PubNub SDK (`PubNubAsyncio`).

Nothing else in the project imports `pubnub` (`reflex_core.sdk_fixes` holds this module's SDK
workarounds). Callers get typed events (`reflex_core.events`), one exception type
(`reflex_core.errors.BusError`) and operations that already page, retry and decrypt the way
the agent and the dashboard need, so SDK quirks are handled once, here.

Request budget (issue: <= 450 HTTP requests per agent per hour at 6 checks / 10 s): an agent
publishes one batched `results` message per round (360/h) and keeps one subscribe long-poll
open (the hub holds it ~280 s, PubNub similar: ~13/h plus one per received command). Presence
heartbeats are the remaining lever. The derived interval is `presence_timeout - 30 s` (but never
below PubNub's rule timeout/2 - 1): 30 s is enough for a failed heartbeat to be retried
(reconnect interval ~3-4 s, request timeout 10 s) before the presence times out, and costs far
less than timeout/2. With the default `presence_timeout` of 120 s: every 90 s, 40 requests/h,
9 % of the budget, ~415/h in total, leaving room for commands, state messages and file syncs
(timeout/2 - 1 would be 61/h, ~435/h total). 300 s -> 270 s -> 13/h. Near PubNub's minimum
timeout of 20 s heartbeats alone would cost 400/h. On the local hub a subscribe poll also
counts as a heartbeat; on PubNub a 280 s poll does not keep a 120 s presence alive, so
heartbeats stay on in both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# isort: off
# Must precede the first pubnub import (see the module's docstring).
import reflex_core.lean_imports  # noqa: F401

# isort: on
from pubnub.callbacks import SubscribeCallback
from pubnub.crypto import AesCbcCryptoModule
from pubnub.endpoints.presence.leave import Leave
from pubnub.enums import PNReconnectionPolicy, PNStatusCategory
from pubnub.event_engine.models import events as ee_events
from pubnub.exceptions import PubNubAsyncioException, PubNubException
from pubnub.models.consumer.objects_v2.channel_members import PNUserMember
from pubnub.models.consumer.objects_v2.common import MemberIncludes
from pubnub.models.consumer.objects_v2.memberships import PNChannelMembership
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from reflex_core import sdk_fixes
from reflex_core.errors import BusError, DecryptionError
from reflex_core.events import (
    ChannelMember,
    ConnectionEvent,
    ConnectionState,
    FileEvent,
    FileInfo,
    HistoryEntry,
    MembershipEvent,
    Message,
    PresenceAction,
    PresenceEvent,
    SentFile,
    UndecryptableMessage,
    UuidMetadata,
    UuidMetadataEvent,
)

__all__ = ["Bus", "BusError", "BusSettings", "BusStats", "DecryptionError"]

# Applied at import so that no PubNub instance in the process can run without the relays.
sdk_fixes.apply()

logger = logging.getLogger(__name__)

# The SDK logs every failed request of an outage at ERROR/WARNING ("session.request exception",
# "Will reconnect in ..."), several lines per second. The facade logs the connection changes
# itself, once each. Set the "pubnub" logger's level after import to see the SDK's own lines.
if logging.getLogger("pubnub").level == logging.NOTSET:
    logging.getLogger("pubnub").setLevel(logging.CRITICAL)

T = TypeVar("T")

MAX_FILE_BYTES = 5 * 1024 * 1024  # PubNub File Sharing's limit
_HISTORY_PAGE_SINGLE = 100  # PubNub's cap per request for one channel
_HISTORY_PAGE_MULTI = 25  # ... and per channel when several are fetched at once
_HISTORY_CHANNELS_PER_REQUEST = 100  # keeps the URL far below PubNub's 32 KiB limit
_MEMBERS_PER_PATCH = 100  # PubNub accepts at most 100 set/delete items per call
_HEARTBEAT_RETRY_MARGIN = 30  # s before the presence timeout left for heartbeat retries
_LEAVE_TIMEOUT = 2.0  # leave on close is best effort; an agent must stop within ~2 s
# Engine states from which a subscription resumes at its old cursor (nothing gets lost).
_RESUMING_STATES = frozenset({"ReceiveReconnectingState", "ReceiveFailedState"})


@dataclass(frozen=True, slots=True)
class BusSettings:
    """Everything the facade needs, independent of how the config file is shaped.

    `origin` None means PubNub itself; "127.0.0.1:8787" a local hub (then `ssl=False`).
    `heartbeat_interval` None derives it from `presence_timeout` (see module docstring).
    `reconnect_max_attempts` None retries forever; a number lets the SDK give up after that
    many attempts, after which the facade re-subscribes itself once the origin answers again.
    """

    publish_key: str
    subscribe_key: str
    user_id: str
    origin: str | None = None
    ssl: bool = True
    cipher_key: str | None = None
    auth_key: str | None = None
    presence_timeout: int = 120
    heartbeat_interval: float | None = None
    presence_heartbeat: bool = True
    reconnect_interval: float = 3.0
    reconnect_max_attempts: int | None = None
    request_timeout: int = 10  # whole seconds: the SDK asserts ints
    connect_timeout: int = 10
    dedup_size: int = 5000

    def __post_init__(self) -> None:
        if not self.user_id or not self.user_id.strip():
            raise ValueError("user_id must not be empty")
        if not self.subscribe_key:
            raise ValueError("subscribe_key must not be empty")
        if self.presence_timeout < 20:
            raise ValueError("presence_timeout must be at least 20 s (PubNub's minimum)")
        if self.heartbeat_interval is not None and not (
            0 < self.heartbeat_interval < self.presence_timeout
        ):
            raise ValueError("heartbeat_interval must be > 0 and below presence_timeout")
        if self.reconnect_interval <= 0:
            raise ValueError("reconnect_interval must be > 0")
        if not (isinstance(self.request_timeout, int) and isinstance(self.connect_timeout, int)):
            raise ValueError("request_timeout and connect_timeout must be whole seconds (int)")
        if self.request_timeout < 1 or self.connect_timeout < 1:
            raise ValueError("request_timeout and connect_timeout must be at least 1 s")
        if self.dedup_size < 100:
            raise ValueError("dedup_size must be at least 100")

    @property
    def effective_heartbeat_interval(self) -> float:
        """Seconds between presence heartbeats (see the module docstring for the budget)."""
        if self.heartbeat_interval is not None:
            return self.heartbeat_interval
        timeout = self.presence_timeout
        return float(max(timeout / 2 - 1, timeout - _HEARTBEAT_RETRY_MARGIN))

    @classmethod
    def from_config(cls, config: object, *, user_id: str, **overrides: Any) -> BusSettings:
        """Build settings from any object with the config's attribute names.

        Reads `pub`, `sub`, `origin`, `ssl`, `cipher_key`, `auth_key`, `presence_timeout`
        by name so this module does not depend on the exact shape of `reflex_core.config`.
        """
        values: dict[str, Any] = {
            "publish_key": getattr(config, "pub", None) or "",
            "subscribe_key": getattr(config, "sub", None) or "",
            "user_id": user_id,
            "origin": getattr(config, "origin", None) or None,
            "ssl": bool(getattr(config, "ssl", True)),
            "cipher_key": getattr(config, "cipher_key", None) or None,
            "auth_key": getattr(config, "auth_key", None) or None,
        }
        timeout = getattr(config, "presence_timeout", None)
        if timeout is not None:
            values["presence_timeout"] = int(timeout)
        values.update(overrides)
        return cls(**values)


@dataclass(slots=True)
class BusStats:
    """Counters for logs, benchmarks and tests."""

    publishes: int = 0
    heartbeats: int = 0
    heartbeat_channels: tuple[str, ...] = ()
    duplicates_dropped: int = 0
    reconnects: int = 0
    resubscribes: int = 0
    undecryptable: int = 0
    listener_errors: int = 0


Callback = Callable[[T], object]


@dataclass(eq=False, slots=True)
class _Listener:
    on_message: Callback[Message] | None = None
    on_presence: Callback[PresenceEvent] | None = None
    on_membership: Callback[MembershipEvent] | None = None
    on_uuid_metadata: Callback[UuidMetadataEvent] | None = None
    on_file: Callback[FileEvent] | None = None
    on_connection: Callback[ConnectionEvent] | None = None
    on_undecryptable: Callback[UndecryptableMessage] | None = None


@dataclass(slots=True)
class _Dedup:
    """Bounded memory of delivered (channel, timetoken) pairs (oldest forgotten first)."""

    size: int
    seen: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)

    def first_time(self, key: tuple[str, str]) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return True


class Bus:
    """Async PubNub client for one user id (an agent's device id, or a dashboard).

    Usage::

        bus = Bus(settings)
        await bus.start()
        remove = bus.add_listener(on_message=handle)
        await bus.subscribe(["device.*"], presence_channels=["ignore"])
        ...
        await bus.close()   # sends presence leave, stops the SDK

    Listener callbacks may be plain functions or coroutine functions (run as tasks). An
    exception in a callback is logged and never reaches the SDK.
    """

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._pn: PubNubAsyncio | None = None
        self._manager: sdk_fixes.ReflexSubscriptionManager | None = None
        self._listeners: list[_Listener] = []
        self._channels: list[str] = []  # data channels, subscription order
        self._presence: list[str] = []  # channels whose -pnpres we receive
        self._connection = ConnectionEvent(ConnectionState.DISCONNECTED, time.time())
        self._ever_connected = False
        self._connection_changed = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._dedup = _Dedup(settings.dedup_size)
        self._warned_undecryptable: set[str] = set()
        self._closing = False
        self._heartbeat_seen = asyncio.Event()
        self._refused = False  # last subscribe failure was an HTTP error, not the network
        self.stats = BusStats()

    # ------------------------------------------------------------------ lifecycle

    @property
    def settings(self) -> BusSettings:
        return self._settings

    @property
    def user_id(self) -> str:
        return self._settings.user_id

    @property
    def started(self) -> bool:
        return self._pn is not None and not self._closing

    async def start(self) -> None:
        """Create the SDK client on the running loop. Idempotent."""
        if self._pn is not None:
            if self._closing:
                raise RuntimeError("a closed Bus cannot be restarted; create a new one")
            return
        self._pn = PubNubAsyncio(
            _build_config(self._settings),
            custom_event_loop=asyncio.get_running_loop(),
            subscription_manager=sdk_fixes.ReflexSubscriptionManager,
            custom_request_handler=sdk_fixes.Http11RequestHandler,
        )
        manager = self._pn._subscription_manager
        assert isinstance(manager, sdk_fixes.ReflexSubscriptionManager)
        self._manager = manager
        manager.hooks = _Hooks(self)
        self._pn.add_listener(_SdkListener(self))

    async def close(self) -> None:
        """Leave presence on subscribed channels, stop the SDK and every task it started."""
        if self._pn is None or self._closing:
            return
        self._closing = True
        pn, manager = self._pn, self._manager
        assert manager is not None
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        leave = [c for c in self._channels if not _is_wildcard(c)]
        # Stop the subscribe loop (and its heartbeats) before leaving: a long-poll
        # still open after the leave counts as presence again on PubNub and on the
        # hub, and the uuid would linger in here_now until the presence timeout.
        await manager.shutdown()
        if leave:
            await self._send_leave(leave, within=_LEAVE_TIMEOUT)
        closing_tasks = set(asyncio.all_tasks())
        await pn.stop()
        # `PubNubAsyncHTTPTransport.close()` schedules `aclose()` as a fire-and-forget task.
        leftovers = [
            t
            for t in asyncio.all_tasks() - closing_tasks
            if "aclose" in getattr(t.get_coro(), "__qualname__", "")
        ]
        if leftovers:
            await asyncio.wait(leftovers, timeout=1.0)
        was_connected = self._connection.state is not ConnectionState.DISCONNECTED
        self._channels.clear()
        self._presence.clear()
        if was_connected:
            self._set_connection(ConnectionState.DISCONNECTED, "closed")
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_tasks:
            await asyncio.wait(list(self._callback_tasks), timeout=1.0)
        self._listeners.clear()

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ listeners

    def add_listener(
        self,
        *,
        on_message: Callback[Message] | None = None,
        on_presence: Callback[PresenceEvent] | None = None,
        on_membership: Callback[MembershipEvent] | None = None,
        on_uuid_metadata: Callback[UuidMetadataEvent] | None = None,
        on_file: Callback[FileEvent] | None = None,
        on_connection: Callback[ConnectionEvent] | None = None,
        on_undecryptable: Callback[UndecryptableMessage] | None = None,
    ) -> Callable[[], None]:
        """Register typed callbacks; returns a function that removes them again."""
        listener = _Listener(
            on_message=on_message,
            on_presence=on_presence,
            on_membership=on_membership,
            on_uuid_metadata=on_uuid_metadata,
            on_file=on_file,
            on_connection=on_connection,
            on_undecryptable=on_undecryptable,
        )
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    @property
    def connection(self) -> ConnectionEvent:
        """The latest connection state (DISCONNECTED before the first subscribe)."""
        return self._connection

    async def wait_connected(self) -> ConnectionEvent:
        """Wait until the subscription is connected (or reconnected).

        Wrap it in ``asyncio.timeout()``: with the origin down this waits for its return.
        """
        while not self._connection.connected:
            self._connection_changed.clear()
            await self._connection_changed.wait()
        return self._connection

    async def wait_heartbeat(self) -> tuple[str, ...]:
        """Wait for the next successful presence heartbeat; returns the channels it covered.

        Diagnostics (and tests): shows heartbeats are sent and for which channels.
        """
        self._heartbeat_seen.clear()
        await self._heartbeat_seen.wait()
        return self.stats.heartbeat_channels

    # ------------------------------------------------------------------ pub/sub

    async def publish(
        self,
        channel: str,
        message: Mapping[str, Any],
        *,
        store: bool = True,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Publish a JSON object; returns PubNub's timetoken. POST, so 30 KiB messages fit."""
        if not isinstance(message, Mapping):
            raise TypeError("message must be a JSON object (a mapping)")
        _check_channel(channel)
        pn = self._client()
        request = pn.publish(
            channel=channel,
            message=dict(message),
            should_store=store,
            use_post=True,
            meta=dict(meta) if meta is not None else None,
        )
        result = await self._call("publish", channel, request.future())
        self.stats.publishes += 1
        return int(result.timetoken)

    @property
    def subscribed_channels(self) -> tuple[str, ...]:
        return tuple(self._channels)

    @property
    def presence_channels(self) -> tuple[str, ...]:
        return tuple(self._presence)

    async def subscribe(
        self,
        channels: Iterable[str] = (),
        *,
        presence_channels: Iterable[str] = (),
        timetoken: int | None = None,
    ) -> None:
        """Add channels (``device.*`` wildcards allowed) and presence-event channels.

        `presence_channels` deliver join/leave/timeout of *others* on those channels without
        this client joining them. `timetoken` resumes from a stored cursor (catch-up).
        Connection progress arrives as `ConnectionEvent`s; see `wait_connected()`.
        """
        pn = self._client()
        new_channels = [c for c in dict.fromkeys(channels) if c not in self._channels]
        new_presence = [c for c in dict.fromkeys(presence_channels) if c not in self._presence]
        for name in (*new_channels, *new_presence):
            _check_channel(name)
        names = new_channels + [f"{c}-pnpres" for c in new_presence]
        if not names:
            return
        builder = pn.subscribe().channels(names)
        if timetoken:
            builder = builder.with_timetoken(int(timetoken))
        builder.execute()
        self._channels.extend(new_channels)
        self._presence.extend(new_presence)
        self._sync_heartbeat()

    async def unsubscribe(
        self, channels: Iterable[str] = (), *, presence_channels: Iterable[str] = ()
    ) -> None:
        """Remove channels (sending presence leave for them) and/or presence channels.

        Unsubscribing a channel also stops its presence events (the SDK couples the two).
        """
        pn = self._client()
        gone = [c for c in dict.fromkeys(channels) if c in self._channels]
        gone_presence = [
            c for c in dict.fromkeys(presence_channels) if c in self._presence and c not in gone
        ]
        names = gone + [f"{c}-pnpres" for c in gone_presence]
        if not names:
            return
        pn.unsubscribe().channels(names).execute()
        for name in gone:
            self._channels.remove(name)
            if name in self._presence:
                self._presence.remove(name)
        for name in gone_presence:
            self._presence.remove(name)
        self._sync_heartbeat()
        leave = [c for c in gone if not _is_wildcard(c)]
        if leave:
            await self._send_leave(leave, within=self._settings.request_timeout)

    # ------------------------------------------------------------------ presence

    async def here_now(self, channel: str) -> list[str]:
        """User ids present on `channel` (all pages), sorted."""
        _check_channel(channel)
        pn = self._client()
        uuids: list[str] = []
        offset = 0
        page = 1000
        while True:
            request = pn.here_now(channels=[channel], include_uuids=True).limit(page)
            if offset:
                request = request.offset(offset)
            result = await self._call("here_now", channel, request.future())
            got: list[str] = []
            occupancy = 0
            for data in result.channels or []:
                occupancy += int(getattr(data, "occupancy", 0) or 0)
                got.extend(o.uuid for o in (data.occupants or []) if o.uuid)
            uuids.extend(got)
            offset += len(got)
            if not got or len(got) < page or offset >= occupancy:
                break
        return sorted(set(uuids))

    # ------------------------------------------------------------------ App Context

    async def get_channel_members(
        self, channel: str, *, page_size: int = 100
    ) -> list[ChannelMember]:
        """All members of `channel` (every page) with their uuid metadata (name, custom)."""
        _check_channel(channel)
        pn = self._client()
        includes = MemberIncludes(custom=True, user=True, user_custom=True)
        members: list[ChannelMember] = []
        page: Any = None
        seen_pages: set[str] = set()
        while True:
            request = pn.get_channel_members(
                channel=channel, limit=page_size, include=includes, page=page
            )
            result = await self._call("get_channel_members", channel, request.future())
            for item in result.data or []:
                member = _member_from(item)
                if member is not None:
                    members.append(member)
            page = result.next
            if not result.data or page is None or page.hash in seen_pages:
                break
            seen_pages.add(page.hash)
        return members

    async def set_channel_members(
        self, channel: str, members: Iterable[str] | Mapping[str, Mapping[str, Any] | None]
    ) -> None:
        """Add or update members; a mapping gives each member's membership `custom`."""
        _check_channel(channel)
        pn = self._client()
        items = (
            list(members.items())
            if isinstance(members, Mapping)
            else [(uuid, None) for uuid in members]
        )
        for chunk in _chunks(items, _MEMBERS_PER_PATCH):
            payload = [
                PNUserMember(uuid, custom=dict(custom) if custom else None)
                for uuid, custom in chunk
            ]
            await self._call(
                "set_channel_members",
                channel,
                pn.set_channel_members(channel=channel, uuids=payload).future(),
            )

    async def remove_channel_members(self, channel: str, uuids: Iterable[str]) -> None:
        _check_channel(channel)
        pn = self._client()
        for chunk in _chunks(list(dict.fromkeys(uuids)), _MEMBERS_PER_PATCH):
            await self._call(
                "remove_channel_members",
                channel,
                pn.remove_channel_members(
                    channel=channel, uuids=[PNUserMember(u) for u in chunk]
                ).future(),
            )

    async def join_channel(self, channel: str, uuid: str | None = None) -> None:
        """Make `uuid` (default: this client) a member of `channel`, from the user's side.

        The same membership as `set_channel_members`, through Set Memberships on the uuid.
        With Access Manager that needs only `join` on the channel and `update` on the uuid,
        where the channel side needs `manage`, which would also let the caller remove
        every other member: this is how an agent registers itself.
        """
        _check_channel(channel)
        pn = self._client()
        await self._call(
            "set_memberships",
            channel,
            pn.set_memberships(
                uuid=uuid or self._settings.user_id,
                channel_memberships=[PNChannelMembership.channel(channel)],
            ).future(),
        )

    async def leave_channel(self, channel: str, uuid: str | None = None) -> None:
        """Remove `uuid`'s (default: this client's) membership of `channel`, from its side."""
        _check_channel(channel)
        pn = self._client()
        await self._call(
            "remove_memberships",
            channel,
            pn.remove_memberships(
                uuid=uuid or self._settings.user_id,
                channel_memberships=[PNChannelMembership.channel(channel)],
            ).future(),
        )

    async def get_uuid_metadata(self, uuid: str) -> UuidMetadata | None:
        """Metadata of `uuid`, or None when none is stored."""
        pn = self._client()
        try:
            result = await self._call(
                "get_uuid_metadata",
                None,
                pn.get_uuid_metadata(uuid=uuid, include_custom=True).future(),
                uuid=uuid,
            )
        except BusError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _uuid_metadata_from(uuid, result.data)

    async def set_uuid_metadata(
        self,
        uuid: str,
        *,
        name: str | None = None,
        custom: Mapping[str, str | int | float | bool] | None = None,
    ) -> UuidMetadata:
        """Set `name` and/or `custom` of `uuid`; a field left None keeps its stored value.

        The SDK always sends every field and PubNub stores what it gets, so an omitted name
        would be nulled; the facade reads the current value first in that case.
        `custom` must be flat (str/int/float/bool values), as App Context requires.
        """
        pn = self._client()
        if custom is not None:
            _check_flat_custom(custom)
        if name is None or custom is None:
            current = await self.get_uuid_metadata(uuid)
            if current is not None:
                name = current.name if name is None else name
                custom = current.custom if custom is None else custom
        request = pn.set_uuid_metadata(
            uuid=uuid, name=name, custom=dict(custom) if custom else None, include_custom=True
        )
        result = await self._call("set_uuid_metadata", None, request.future(), uuid=uuid)
        return _uuid_metadata_from(uuid, result.data) or UuidMetadata(uuid, name, None)

    # ------------------------------------------------------------------ files

    async def send_file(
        self,
        channel: str,
        name: str,
        data: bytes,
        *,
        message: Any = None,
        store: bool = True,
    ) -> SentFile:
        """Upload `data` as `name` to `channel` and publish the file event (encrypted if set)."""
        _check_channel(channel)
        if len(data) > MAX_FILE_BYTES:
            raise BusError(
                "send_file",
                f"{name} is {len(data)} bytes; PubNub accepts at most {MAX_FILE_BYTES}",
                channel=channel,
            )
        pn = self._client()
        sender = sdk_fixes.GuardedSendFile(pn)
        sender.channel(channel).file_name(name).file_object(bytes(data)).should_store(store)
        if message is not None:
            sender.message(message)
        envelope = await self._call("send_file", channel, sender.future(), envelope=True)
        result = envelope.result
        return SentFile(id=result.file_id, name=result.name, timetoken=int(result.timestamp))

    async def list_files(self, channel: str, *, page_size: int = 100) -> list[FileInfo]:
        """Every file stored on `channel` (all pages)."""
        _check_channel(channel)
        pn = self._client()
        files: list[FileInfo] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            request = pn.list_files(channel=channel, limit=page_size, next=cursor)
            result = await self._call("list_files", channel, request.future())
            for item in result.data or []:
                files.append(
                    FileInfo(
                        id=str(item.get("id")),
                        name=str(item.get("name")),
                        size=int(item.get("size") or 0),
                        created=str(item.get("created") or ""),
                    )
                )
            cursor = result.next
            if not result.data or not cursor or cursor in seen:
                break
            seen.add(cursor)
        return files

    async def download_file(self, channel: str, file_id: str, name: str) -> bytes:
        _check_channel(channel)
        pn = self._client()
        downloader = sdk_fixes.GuardedDownloadFile(pn)
        downloader.channel(channel).file_id(file_id).file_name(name)
        envelope = await self._call("download_file", channel, downloader.future(), envelope=True)
        return bytes(envelope.result.data)

    async def delete_file(self, channel: str, file_id: str, name: str) -> None:
        _check_channel(channel)
        pn = self._client()
        request = pn.delete_file(channel=channel, file_id=file_id, file_name=name)
        await self._call("delete_file", channel, request.future())

    # ------------------------------------------------------------------ history

    async def fetch_history(
        self,
        channels: str | Iterable[str],
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = 100,
    ) -> dict[str, list[HistoryEntry]]:
        """Stored messages per channel, oldest first, paging as far as needed.

        `limit` is per channel: the newest `limit` messages (None = all in the window).
        The window is [end, start): `end` inclusive, `start` exclusive, either may be None.
        Entries that cannot be decrypted carry `error` instead of failing the whole fetch.
        """
        names = [channels] if isinstance(channels, str) else list(dict.fromkeys(channels))
        for name in names:
            _check_channel(name)
        collected: dict[str, list[HistoryEntry]] = {name: [] for name in names}
        if not names or (limit is not None and limit <= 0):
            return collected
        if end is not None and start is None:
            # With only `end` PubNub returns the oldest part of the window first; anchored at
            # "now", every request pages backwards from the newest message the same way.
            start = await self.time() + 1
        follow_up: dict[str, int] = {}

        def take(name: str, page: list[HistoryEntry], asked: int) -> None:
            page = [e for e in page if end is None or e.timetoken >= end]
            page.sort(key=lambda e: e.timetoken)
            collected[name][:0] = page
            if not page or len(page) < asked:
                return
            if limit is not None and len(collected[name]) >= limit:
                return
            oldest = page[0].timetoken
            if end is not None and oldest <= end:
                return
            follow_up[name] = oldest

        if len(names) > 1:
            for chunk in _chunks(names, _HISTORY_CHANNELS_PER_REQUEST):
                asked = _HISTORY_PAGE_MULTI
                if limit is not None:
                    asked = min(asked, limit)
                pages = await self._history_page(chunk, start, end, asked)
                for name in chunk:
                    take(name, pages.get(name, []), asked)
        else:
            follow_up[names[0]] = start if start is not None else 0

        semaphore = asyncio.Semaphore(8)

        async def drain(name: str) -> None:
            cursor: int | None = follow_up.pop(name) or None
            while True:
                asked = _HISTORY_PAGE_SINGLE
                if limit is not None:
                    asked = max(1, min(asked, limit - len(collected[name])))
                async with semaphore:
                    pages = await self._history_page([name], cursor, end, asked)
                take(name, pages.get(name, []), asked)
                nxt = follow_up.pop(name, None)
                if nxt is None or (cursor is not None and nxt >= cursor):
                    return
                cursor = nxt

        await asyncio.gather(*(drain(name) for name in list(follow_up)))
        if limit is not None:
            for name in names:
                collected[name] = collected[name][-limit:]
        return collected

    async def _history_page(
        self, names: Sequence[str], start: int | None, end: int | None, count: int
    ) -> dict[str, list[HistoryEntry]]:
        pn = self._client()
        # Decryption is done here, per entry: with `decrypt_messages=True` the SDK lets a
        # TypeError from one unencrypted entry fail the whole request.
        request = pn.fetch_messages(
            channels=list(names),
            start=start,
            end=end,
            count=count,
            include_meta=True,
            include_uuid=True,
            include_message_type=True,
        )
        where = names[0] if len(names) == 1 else ",".join(names[:3])
        result = await self._call("fetch_history", where, request.future())
        out: dict[str, list[HistoryEntry]] = {}
        for name, items in (result.channels or {}).items():
            out[name] = [self._history_entry(name, item) for item in items]
        return out

    def _history_entry(self, channel: str, item: Any) -> HistoryEntry:
        payload, error = self._decrypt(item.message)
        message_type = getattr(item, "message_type", None)
        return HistoryEntry(
            channel=channel,
            timetoken=int(item.timetoken),
            payload=payload,
            publisher=getattr(item, "uuid", None),
            meta=item.meta if isinstance(item.meta, dict) else None,
            is_file=str(message_type) == "4",
            error=error,
        )

    # ------------------------------------------------------------------ misc

    async def time(self) -> int:
        """PubNub's current timetoken (a cheap reachability check)."""
        pn = self._client()
        result = await self._call("time", None, pn.time().future())
        return int(result)

    # ================================================================== internals

    def _client(self) -> PubNubAsyncio:
        if self._pn is None:
            raise RuntimeError("Bus.start() has not been awaited")
        if self._closing:
            raise RuntimeError("Bus is closed")
        return self._pn

    async def _call(
        self,
        operation: str,
        channel: str | None,
        request: Awaitable[Any],
        *,
        envelope: bool = False,
        uuid: str | None = None,
    ) -> Any:
        """Await an SDK request and turn every failure shape into a `BusError`.

        The SDK catches `CancelledError` inside its request code and returns an
        error result instead, so a caller being cancelled would see a `BusError`
        and might retry forever. Whenever our task is being cancelled, re-raise
        the cancellation instead (remove once the SDK lets CancelledError through).
        """
        try:
            response = await request
        except asyncio.CancelledError:
            raise
        except PubNubAsyncioException as exc:
            _reraise_if_cancelling()
            raise _bus_error(operation, channel, uuid, exc.status, exc) from None
        except PubNubException as exc:
            _reraise_if_cancelling()
            raise _bus_error(operation, channel, uuid, exc.status, exc) from None
        except BusError:
            raise
        except Exception as exc:
            _reraise_if_cancelling()
            raise BusError(
                operation, f"unexpected SDK failure: {exc!r}", channel=channel, uuid=uuid
            ) from exc
        _reraise_if_cancelling()
        if response is None:
            raise BusError(operation, "request was cancelled", channel=channel, uuid=uuid)
        if response.is_error():
            raise _bus_error(operation, channel, uuid, response.status, response)
        return response if envelope else response.result

    async def _send_leave(self, channels: Sequence[str], *, within: float) -> None:
        pn = self._pn
        if pn is None:
            return
        try:
            async with asyncio.timeout(within):
                await self._call(
                    "leave", ",".join(channels), Leave(pn).channels(list(channels)).future()
                )
        except (BusError, TimeoutError) as exc:
            logger.warning("presence leave failed: %s", exc)

    def _sync_heartbeat(self) -> None:
        if self._manager is None:
            return
        channels = (
            [c for c in self._channels if not _is_wildcard(c)]
            if self._settings.presence_heartbeat
            else []
        )
        self._manager.set_heartbeat_channels(channels)

    def _decrypt(self, value: Any) -> tuple[Any, str | None]:
        """Decrypt a stored/published value; returns (payload, error-or-None)."""
        pn = self._pn
        if not self._settings.cipher_key:
            if _looks_encrypted(value):
                return value, "content is encrypted but no cipher_key is configured"
            return value, None
        if not isinstance(value, str):
            return value, "content is not encrypted (does the publisher have the cipher_key?)"
        try:
            assert pn is not None
            return pn.crypto.decrypt(value), None
        except Exception as exc:  # PubNubException, binascii.Error, ValueError, ...
            detail = _reason(exc)
            if detail == "decryption error":
                return value, "decryption failed: different cipher_key?"
            return value, f"decryption failed ({detail}): different cipher_key?"

    # -- connection state ---------------------------------------------------------------------

    def _set_connection(self, state: ConnectionState, detail: str = "") -> None:
        if state is self._connection.state:
            return
        self._connection = ConnectionEvent(state, time.time(), detail)
        self._connection_changed.set()
        level = logging.WARNING if state is ConnectionState.RECONNECTING else logging.INFO
        logger.log(level, "pubnub %s%s", state.value, f" ({detail})" if detail else "")
        if state is ConnectionState.RECONNECTED:
            self.stats.reconnects += 1
        self._dispatch("on_connection", self._connection)

    def _reachable(self) -> None:
        self._refused = False
        if self._closing or self._connection.connected:
            return
        if self._connection.state is ConnectionState.RECONNECTING and self._ever_connected:
            state = ConnectionState.RECONNECTED
        else:
            state = ConnectionState.CONNECTED
        self._ever_connected = True
        self._set_connection(state)

    def _unreachable(self, detail: str, *, refused: bool = False) -> None:
        """The subscription failed; `refused` when the origin answered with an HTTP error.

        A refusal (403, 400, ...) means the origin is reachable but will not serve us, so the
        probe must not report "reconnected" (it would flap with every retry).
        """
        if self._closing:
            return
        self._refused = refused
        self._set_connection(ConnectionState.RECONNECTING, detail)
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.ensure_future(self._probe_loop())

    async def _probe_loop(self) -> None:
        """While reconnecting: find out when the origin answers again.

        The SDK's receive-reconnect attempt is a subscribe with the old cursor, which the server
        holds as a long-poll when nothing was missed, so its success would only be reported
        minutes later. A cheap `time` request tells when the origin is back; since the cursor is
        kept, nothing published from then on is lost. When the SDK has given up (attempt
        limit), this is also what re-subscribes, from the last cursor, so there is no gap.
        """
        interval = self._settings.reconnect_interval
        while not self._closing and self._connection.state is ConnectionState.RECONNECTING:
            await asyncio.sleep(interval)
            try:
                await self.time()
            except (BusError, RuntimeError):
                continue
            manager = self._manager
            if manager is None or self._closing:
                return
            state = manager.event_engine.get_state_name()
            if state in sdk_fixes.FAILED_STATES:
                logger.warning("pubnub gave up reconnecting; re-subscribing")
                self.stats.resubscribes += 1
                manager.event_engine.trigger(ee_events.ReconnectEvent())
            if state in _RESUMING_STATES and not self._refused:
                # The cursor is kept: whatever is published from now on will be delivered.
                # (A handshake, by contrast, starts at "now"; its own success is awaited.)
                self._reachable()

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, slot: str, event: Any) -> None:
        for listener in list(self._listeners):
            callback = getattr(listener, slot)
            if callback is None:
                continue
            try:
                result = callback(event)
            except Exception:
                self.stats.listener_errors += 1
                logger.exception("listener %s failed on %r", slot, event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.stats.listener_errors += 1
            logger.error("async listener failed: %r", exc, exc_info=exc)

    def _deliver_undecryptable(self, event: UndecryptableMessage) -> None:
        self.stats.undecryptable += 1
        if event.channel not in self._warned_undecryptable:
            self._warned_undecryptable.add(event.channel)
            logger.error("%s (%s)", event.describe(), event.reason)
        self._dispatch("on_undecryptable", event)


# ====================================================================== SDK glue


def _reraise_if_cancelling() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _Hooks:
    """What `sdk_fixes.ReflexSubscriptionManager` reports back to the facade."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def before_event(self, engine: str, event: str, state: str, handled: bool) -> None:
        # Announce (re)connection before the catch-up messages of the same event are emitted.
        if engine == "subscribe" and handled and event in sdk_fixes.SUCCESS_EVENTS:
            self._bus._reachable()

    def after_event(self, engine: str, event: Any, before: str, after: str) -> None:
        bus = self._bus
        if engine == "presence":
            if event.get_name() == "HeartbeatSuccessEvent":
                bus.stats.heartbeats += 1
                bus.stats.heartbeat_channels = tuple(getattr(event, "channels", ()) or ())
                bus._heartbeat_seen.set()
            return
        if after in sdk_fixes.RECONNECTING_STATES:
            reason = getattr(event, "reason", None)
            if reason is None:
                bus._unreachable("connection lost")
            else:
                status = getattr(getattr(reason, "exception", reason), "_status_code", 0)
                refused = isinstance(status, int) and status > 0
                detail = _reason(reason)
                bus._unreachable(f"HTTP {status}: {detail}" if refused else detail, refused=refused)
        elif after in sdk_fixes.FAILED_STATES and before not in sdk_fixes.FAILED_STATES:
            bus._unreachable("reconnect attempts exhausted")
        elif after == "UnsubscribedState" and before != "UnsubscribedState":
            bus._set_connection(ConnectionState.DISCONNECTED, "no channels")

    def accept_envelope(self, raw: dict[str, Any]) -> bool:
        bus = self._bus
        try:
            key = (str(raw["c"]), str(raw["p"]["t"]))
        except (KeyError, TypeError):
            return True  # malformed: let the SDK fail on it inside the guard
        if bus._dedup.first_time(key):
            return True
        bus.stats.duplicates_dropped += 1
        logger.debug("dropped duplicate delivery %s", key)
        return False

    def envelope_failed(self, raw: dict[str, Any], exc: BaseException) -> None:
        bus = self._bus
        channel = str(raw.get("c", "?"))
        if raw.get("e") == 4 and not isinstance(raw.get("d"), dict):
            # An encrypted file event the SDK could not decrypt (it then indexes a str).
            _, error = bus._decrypt(raw.get("d"))
            subscription = raw.get("b") if raw.get("b") != channel else None
            bus._deliver_undecryptable(
                UndecryptableMessage(
                    channel=channel,
                    subscription=subscription,
                    publisher=raw.get("i"),
                    timetoken=_int(raw.get("p", {}).get("t")),
                    kind="file",
                    reason=error or "decryption failed",
                )
            )
            return
        logger.error(
            "dropped a subscribe envelope on %s the SDK could not process: %r", channel, exc
        )


class _SdkListener(SubscribeCallback):
    """Converts SDK results to typed events. Never raises into the SDK."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def status(self, pubnub: Any, status: Any) -> None:
        category = getattr(status, "category", None)
        if category is PNStatusCategory.PNDecryptionErrorCategory:
            return  # reported per message as UndecryptableMessage
        logger.debug("pubnub status %s", getattr(category, "name", category))

    def message(self, pubnub: Any, message: Any) -> None:
        bus = self._bus
        try:
            error = None
            if message.error is not None:
                _, error = bus._decrypt(message.message)
                error = error or f"decryption failed ({_reason(message.error)})"
            elif not bus._settings.cipher_key and _looks_encrypted(message.message):
                error = "content is encrypted but no cipher_key is configured"
            if error is not None:
                bus._deliver_undecryptable(
                    UndecryptableMessage(
                        channel=message.channel,
                        subscription=message.subscription,
                        publisher=message.publisher,
                        timetoken=int(message.timetoken),
                        kind="message",
                        reason=error,
                    )
                )
                return
            meta = message.user_metadata
            event = Message(
                channel=message.channel,
                subscription=message.subscription,
                publisher=message.publisher,
                timetoken=int(message.timetoken),
                payload=message.message,
                meta=meta if isinstance(meta, dict) else None,
            )
        except Exception:
            logger.exception("could not convert a message")
            return
        bus._dispatch("on_message", event)

    def presence(self, pubnub: Any, presence: Any) -> None:
        try:
            action: PresenceAction | str
            try:
                action = PresenceAction(presence.event)
            except ValueError:
                action = str(presence.event)
            event = PresenceEvent(
                channel=presence.channel,
                action=action,
                uuid=presence.uuid,
                occupancy=int(presence.occupancy or 0),
                timetoken=int(presence.timetoken),
                state=presence.state if isinstance(presence.state, dict) else None,
                joined=tuple(presence.join or ()),
                left=tuple(presence.leave or ()),
                timed_out=tuple(presence.timeout or ()),
            )
        except Exception:
            logger.exception("could not convert a presence event")
            return
        self._bus._dispatch("on_presence", event)

    def membership(self, pubnub: Any, membership: Any) -> None:
        try:
            data = membership.data or {}
            event = MembershipEvent(
                channel=str(data["channel"]["id"]),
                uuid=str(data["uuid"]["id"]),
                action=str(membership.event),
                custom=data.get("custom") if isinstance(data.get("custom"), dict) else None,
            )
        except Exception:
            logger.exception("could not convert a membership event")
            return
        self._bus._dispatch("on_membership", event)

    def uuid(self, pubnub: Any, uuid: Any) -> None:
        try:
            data = uuid.data or {}
            event = UuidMetadataEvent(
                uuid=str(data["id"]),
                action=str(uuid.event),
                name=data.get("name"),
                custom=data.get("custom") if isinstance(data.get("custom"), dict) else None,
            )
        except Exception:
            logger.exception("could not convert a uuid metadata event")
            return
        self._bus._dispatch("on_uuid_metadata", event)

    def file(self, pubnub: Any, file_message: Any) -> None:
        try:
            event = FileEvent(
                channel=file_message.channel,
                subscription=file_message.subscription,
                publisher=file_message.publisher,
                file_id=str(file_message.file_id),
                file_name=str(file_message.file_name),
                message=file_message.message,
                timetoken=int(file_message.timetoken),
            )
        except Exception:
            logger.exception("could not convert a file event")
            return
        self._bus._dispatch("on_file", event)

    def channel(self, pubnub: Any, channel: Any) -> None:
        logger.debug("ignored channel metadata event %s", channel)

    def signal(self, pubnub: Any, signal: Any) -> None:
        logger.debug("ignored signal on %s", getattr(signal, "channel", "?"))

    def message_action(self, pubnub: Any, message_action: Any) -> None:
        logger.debug("ignored message action")


# ====================================================================== helpers


def _build_config(settings: BusSettings) -> PNConfiguration:
    config = PNConfiguration()
    config.publish_key = settings.publish_key or None
    config.subscribe_key = settings.subscribe_key
    config.user_id = settings.user_id
    if settings.origin:
        config.origin = settings.origin
    config.ssl = settings.ssl
    config.auth_key = settings.auth_key or None
    config.non_subscribe_request_timeout = settings.request_timeout
    config.connect_timeout = settings.connect_timeout
    # SDK default is no heartbeat at all (presence then depends on the server's view of the
    # subscribe long-poll); see the module docstring for the interval.
    config.enable_presence_heartbeat = settings.presence_heartbeat
    config.set_presence_timeout_with_custom_interval(
        settings.presence_timeout, settings.effective_heartbeat_interval
    )
    # Leave is sent (and awaited) by the facade on unsubscribe/close; the engine's own leave
    # is fire-and-forget and would race the shutdown.
    config.suppress_leave_events = True
    # The SDK default (exponential, 6 retries) gives up after ~4 minutes of outage and then
    # never reconnects on its own. Linear and unlimited; the facade re-subscribes if a finite
    # limit is configured and reached.
    config.reconnect_policy = PNReconnectionPolicy.LINEAR
    config.reconnection_interval = settings.reconnect_interval
    config.maximum_reconnection_retries = (
        -1 if settings.reconnect_max_attempts is None else settings.reconnect_max_attempts
    )
    if settings.cipher_key:
        # AES-256-CBC with a random IV per message/file and the crypto header, the SDK's
        # recommended module (the legacy default uses a fixed IV for messages).
        config.cipher_key = settings.cipher_key
        config.use_random_initialization_vector = True
        config.crypto_module = AesCbcCryptoModule(config)
    # Locked configs are the SDK's future default and avoid its deprecation warning.
    config.disable_config_locking = False
    return config


def _bus_error(
    operation: str, channel: str | None, uuid: str | None, status: Any, exc: Any
) -> BusError:
    status_code = getattr(status, "status_code", None)
    category = getattr(getattr(status, "category", None), "name", None)
    inner = getattr(getattr(status, "error_data", None), "exception", None) or exc
    message = _reason(inner)
    if getattr(status, "category", None) is PNStatusCategory.PNTimeoutCategory:
        message = f"timed out ({message})"
    if "decryption error" in message or "unknown cryptor" in message:
        return DecryptionError(
            operation,
            f"{message}: content cannot be decrypted, is cipher_key the same everywhere?",
            channel=channel,
            uuid=uuid,
            status_code=status_code,
            category=category,
        )
    return BusError(
        operation,
        message,
        channel=channel,
        uuid=uuid,
        status_code=status_code if isinstance(status_code, int) and status_code > 0 else None,
        category=category,
    )


def _reason(exc: Any) -> str:
    """PubNub's own message from whatever the SDK produced, as one line."""
    inner = getattr(exc, "exception", None)
    if not isinstance(exc, BaseException) and isinstance(inner, BaseException):
        return _reason(inner)  # PNErrorData
    if isinstance(exc, PubNubAsyncioException):
        inner = getattr(getattr(exc.status, "error_data", None), "exception", None)
        if inner is not None and inner is not exc:
            return _reason(inner)
    if isinstance(exc, PubNubException):
        text = _pubnub_message(exc._errormsg) or str(exc._pn_error or "") or str(exc)
        return text.strip() or type(exc).__name__
    if hasattr(exc, "information") and isinstance(exc.information, str):
        return exc.information
    if isinstance(exc, BaseException):
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return str(exc)


def _pubnub_message(body: Any) -> str:
    """Extract the human message from PubNub's error body shapes."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body[:1] in ("{", "["):
        try:
            body = json.loads(body)
        except ValueError:
            return body
    if isinstance(body, list):  # publish: [0, "Message Too Large", "1700..."]
        texts = [item for item in body if isinstance(item, str) and not item.isdigit()]
        return texts[0] if texts else ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # App Context: {"error": {"message": ..., "details": ...}}
            text = str(error.get("message") or "")
            details = error.get("details")
            if isinstance(details, list) and details and isinstance(details[0], dict):
                text = f"{text} ({details[0].get('message', '')})".strip()
            return text
        for key in ("message", "error_message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return ""
    if isinstance(body, str):
        return body
    return ""


def _looks_encrypted(value: Any) -> bool:
    """True for a str carrying the crypto module's header (an encrypted payload)."""
    if not isinstance(value, str) or len(value) < 16:
        return False
    try:
        return base64.b64decode(value[:16], validate=True).startswith(b"PNED")
    except (binascii.Error, ValueError):
        return False


def _member_from(item: Any) -> ChannelMember | None:
    if not isinstance(item, dict):
        return None
    user = item.get("uuid")
    if not isinstance(user, dict) or not user.get("id"):
        return None
    custom = user.get("custom")
    member_custom = item.get("custom")
    return ChannelMember(
        uuid=str(user["id"]),
        name=user.get("name"),
        custom=custom if isinstance(custom, dict) else None,
        member_custom=member_custom if isinstance(member_custom, dict) else None,
        updated=item.get("updated"),
    )


def _uuid_metadata_from(uuid: str, data: Any) -> UuidMetadata | None:
    if not isinstance(data, dict):
        return None
    custom = data.get("custom")
    return UuidMetadata(
        uuid=str(data.get("id") or uuid),
        name=data.get("name"),
        custom=custom if isinstance(custom, dict) else None,
        updated=data.get("updated"),
    )


def _check_channel(name: str) -> None:
    # A comma would silently turn one channel into two in the SDK's comma-joined paths.
    if not isinstance(name, str) or not name or name.strip() != name or "," in name:
        raise ValueError(f"invalid channel name: {name!r}")
    if name.endswith("-pnpres"):
        raise ValueError(f"use presence_channels for presence, not {name!r}")


def _check_flat_custom(custom: Mapping[str, Any]) -> None:
    for key, value in custom.items():
        if (
            not isinstance(key, str)
            or isinstance(value, (dict, list, tuple, set))
            or not (value is None or isinstance(value, (str, int, float, bool)))
        ):
            raise ValueError(
                f"custom[{key!r}] must be a str, int, float or bool (App Context allows no nesting)"
            )


def _is_wildcard(channel: str) -> bool:
    return channel.endswith(".*")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
