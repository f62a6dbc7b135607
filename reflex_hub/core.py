"""The hub's shared state and the operations every endpoint builds on.

One :class:`HubCore` per running hub owns the timetoken clock, the store, the
per-subscribe-key fan-out state, presence, file blobs and request statistics.
Endpoint handlers (in the feature modules) receive it as their first argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reflex_hub.errors import dumps, invalid_subscribe_key, publish_error
from reflex_hub.paths import RawTarget
from reflex_hub.presence import PresenceTracker
from reflex_hub.pubsub import KIND_MESSAGE, PRESENCE_SUFFIX, Keyspace, build_envelope
from reflex_hub.store import Store, StoredMessage
from reflex_hub.timetokens import TimetokenClock

if TYPE_CHECKING:
    from reflex_hub.files import BlobStore, PendingUpload

log = logging.getLogger("reflex_hub")

#: Maximum time a subscribe long-poll is held; the SDK's read timeout is 310 s.
LONGPOLL_SECONDS = 280.0
#: How often lapsed presence is swept into timeout events.
PRESENCE_SWEEP_SECONDS = 0.5
#: Published messages wait at most this long before their batch is written.
FLUSH_DELAY_SECONDS = 0.05
#: A batch this large is written immediately.
FLUSH_BATCH_SIZE = 1000
#: How often history older than the age bound is pruned.
PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass
class HubConfig:
    """Behaviour knobs; the timings are attributes so tests can shorten them."""

    pub_key: str | None = None
    sub_key: str | None = None
    longpoll_seconds: float = LONGPOLL_SECONDS
    presence_sweep_seconds: float = PRESENCE_SWEEP_SECONDS
    flush_delay_seconds: float = FLUSH_DELAY_SECONDS


Handler = Callable[
    ["HubCore", web.BaseRequest, RawTarget, dict[str, str]], Awaitable[web.StreamResponse]
]


class HubCore:
    """State shared by all endpoints of one hub."""

    def __init__(self, config: HubConfig, store: Store, blobs: BlobStore) -> None:
        self.config = config
        self.store = store
        self.blobs = blobs
        self.clock = TimetokenClock(store.last_timetoken())
        self.presence = PresenceTracker(self._emit_presence)
        self.keyspaces: dict[str, Keyspace] = {}
        self.pending_uploads: dict[str, PendingUpload] = {}
        #: Requests received, by endpoint kind ("publish", "subscribe", ...).
        self.stats: Counter[str] = Counter()
        #: Subscribe long-polls currently held open.
        self.held_polls = 0
        self._polls_changed = asyncio.Event()
        self.closing = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._sweep_presence(), name="hub-presence"))
        self._tasks.append(asyncio.create_task(self._prune_history(), name="hub-prune"))

    def begin_shutdown(self) -> None:
        """Answer every held long-poll so the HTTP server can stop promptly."""
        self.closing = True
        for keyspace in self.keyspaces.values():
            keyspace.release_all()

    async def close(self) -> None:
        self.begin_shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.store.close(self.clock.last)

    async def _sweep_presence(self) -> None:
        while True:
            await asyncio.sleep(self.config.presence_sweep_seconds)
            try:
                self.presence.sweep()
            except Exception:  # a bug here must not stop presence for good
                log.exception("presence sweep failed")

    async def _prune_history(self) -> None:
        while True:
            try:
                self.store.prune_older_than(self.clock.next())
            except Exception:
                log.exception("history pruning failed")
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)

    # -- long-poll accounting ----------------------------------------------------------

    def note_poll(self, delta: int) -> None:
        """Count a long-poll starting (+1) or ending (-1) and wake anyone waiting on the count."""
        self.held_polls += delta
        self._polls_changed.set()
        self._polls_changed = asyncio.Event()

    async def wait_for_polls(self, minimum: int) -> None:
        """Return once at least `minimum` long-polls are held (no sleeping, no polling)."""
        while self.held_polls < minimum:
            await self._polls_changed.wait()

    # -- keys ----------------------------------------------------------------------

    def check_sub_key(self, sub_key: str) -> None:
        if self.config.sub_key is not None and sub_key != self.config.sub_key:
            raise invalid_subscribe_key()

    def check_publish_keys(self, pub_key: str, sub_key: str) -> None:
        """Publish-family key check; PubNub answers ``[0, "Invalid Key", tt]`` with a 400."""
        wrong_pub = self.config.pub_key is not None and pub_key != self.config.pub_key
        wrong_sub = self.config.sub_key is not None and sub_key != self.config.sub_key
        if wrong_pub or wrong_sub:
            raise publish_error(400, "Invalid Key", self.clock.next())

    # -- fan-out -----------------------------------------------------------------------

    def keyspace(self, sub_key: str) -> Keyspace:
        keyspace = self.keyspaces.get(sub_key)
        if keyspace is None:
            # Nothing was buffered for this key before now, so the buffer is
            # complete from the current clock on.
            keyspace = Keyspace(sub_key, floor=self.clock.last)
            self.keyspaces[sub_key] = keyspace
        return keyspace

    def publish(
        self,
        *,
        sub_key: str,
        channel: str,
        payload_json: str,
        kind: int = KIND_MESSAGE,
        publisher: str | None = None,
        meta_json: str | None = None,
        custom_type: str | None = None,
        store: bool = True,
        deliver: bool = True,
    ) -> int:
        """Assign a timetoken, fan the message out and queue it for history."""
        # Look the keyspace up first: a new keyspace's buffer floor is the
        # clock's current value, which must be below this message's token.
        keyspace = self.keyspace(sub_key)
        timetoken = self.clock.next()
        if deliver:
            envelope = build_envelope(
                sub_key=sub_key,
                channel=channel,
                timetoken=timetoken,
                payload_json=payload_json,
                kind=kind,
                publisher=publisher,
                meta_json=meta_json,
                custom_type=custom_type,
            )
            keyspace.publish(envelope)
        if store:
            self.store.queue_message(
                StoredMessage(
                    sub_key=sub_key,
                    channel=channel,
                    timetoken=timetoken,
                    kind=kind,
                    message=payload_json,
                    meta=meta_json,
                    publisher=publisher,
                    custom_type=custom_type,
                )
            )
            self._schedule_flush()
        return timetoken

    def emit_event(self, sub_key: str, channel: str, payload: Any, kind: int) -> int:
        """Deliver a service event (presence, App Context) that is never stored."""
        return self.publish(
            sub_key=sub_key, channel=channel, payload_json=dumps(payload), kind=kind, store=False
        )

    def _emit_presence(self, sub_key: str, channel: str, payload: dict[str, Any]) -> None:
        self.emit_event(sub_key, channel + PRESENCE_SUFFIX, payload, KIND_MESSAGE)

    # -- persistence -----------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self.store.pending_count >= FLUSH_BATCH_SIZE:
            self.flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.config.flush_delay_seconds, self.flush)

    def flush(self) -> None:
        """Write queued history and the timetoken high-water mark."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        try:
            self.store.flush(self.clock.last)
        except Exception:
            # Called from a timer: log instead of losing the traceback in the loop.
            log.exception("writing message history failed")
