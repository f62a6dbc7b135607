"""Message fan-out: subscribe envelopes, the recent-message buffer and long-poll waiters.

A subscriber polls with a cursor (the timetoken of the last response) and gets
every message on its channels with a larger timetoken. Each subscribe key has a
:class:`Keyspace` holding

* a buffer of recent envelopes in timetoken order, so a poll that arrives a few
  milliseconds after the previous response finds what was published in
  between (a bisect, no table scan), and
* the waiters of held long-polls, indexed by exact channel and by wildcard
  pattern, so a publish touches only the waiters it matches.

A cursor older than the buffer (after a restart or a long disconnect) is
answered from stored history; see :func:`collect_since`.

Envelopes are serialized once per publish; a wildcard match only prepends the
``"b"`` field to the prebuilt JSON text.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reflex_hub.errors import dumps
from reflex_hub.store import Store, StoredMessage

#: The region the hub reports in every cursor (any integer works for the SDK).
REGION = 1
#: Most messages one subscribe response carries (PubNub's buffer is 100; a
#: local hub can afford more, and bigger batches help a busy subscriber catch up).
MAX_MESSAGES_PER_RESPONSE = 1000
#: Recent-envelope buffer bounds per subscribe key.
RING_MAX_ENTRIES = 50_000
RING_MAX_BYTES = 64 * 1024 * 1024

PRESENCE_SUFFIX = "-pnpres"

#: Subscribe envelope ``e`` values.
KIND_MESSAGE = 0
KIND_SIGNAL = 1
KIND_OBJECTS = 2
KIND_FILE = 4


@dataclass(frozen=True, slots=True)
class Envelope:
    """One delivered event: its timetoken, channel and serialized envelope (without ``b``)."""

    timetoken: int
    channel: str
    json: str


@functools.lru_cache(maxsize=8192)
def _quoted(text: str) -> str:
    """JSON string literal for a key, channel or uuid; they repeat, so cache them."""
    return dumps(text)


def build_envelope(
    *,
    sub_key: str,
    channel: str,
    timetoken: int,
    payload_json: str,
    kind: int = KIND_MESSAGE,
    publisher: str | None = None,
    meta_json: str | None = None,
    custom_type: str | None = None,
) -> Envelope:
    """Serialize a subscribe envelope.

    ``c``, ``d``, ``f``, ``k`` and ``p`` (with ``t`` and ``r``) are always
    present: the SDK indexes them unconditionally and a missing one raises
    inside its subscribe loop, which then stops silently.
    """
    parts = ['{"f":0']
    if kind:
        parts.append(f',"e":{kind}')
    if publisher:
        parts.append(f',"i":{_quoted(publisher)}')
    parts.append(f',"p":{{"t":"{timetoken}","r":{REGION}}}')
    parts.append(f',"k":{_quoted(sub_key)},"c":{_quoted(channel)},"d":{payload_json}')
    if meta_json is not None:
        parts.append(f',"u":{meta_json}')
    if custom_type:
        parts.append(f',"cmt":{dumps(custom_type)}')
    parts.append("}")
    return Envelope(timetoken=timetoken, channel=channel, json="".join(parts))


def envelope_from_stored(message: StoredMessage) -> Envelope:
    return build_envelope(
        sub_key=message.sub_key,
        channel=message.channel,
        timetoken=message.timetoken,
        payload_json=message.message,
        kind=message.kind,
        publisher=message.publisher,
        meta_json=message.meta,
        custom_type=message.custom_type,
    )


def with_match(envelope: Envelope, matched: str | None) -> str:
    """The envelope JSON, with ``"b"`` (the matched wildcard) when there is one."""
    if matched is None:
        return envelope.json
    return '{"b":' + dumps(matched) + "," + envelope.json[1:]


def wildcard_keys(channel: str) -> list[str]:
    """Wildcard subscriptions that match `channel`.

    ``a.b.c`` is matched by ``a.*`` and ``a.b.*``; presence channel
    ``a.b-pnpres`` by ``a.*-pnpres`` (a plain ``a.*`` does not receive presence,
    PubNub delivers wildcard presence only to ``a.*-pnpres``).
    """
    suffix = ""
    base = channel
    if channel.endswith(PRESENCE_SUFFIX):
        base = channel[: -len(PRESENCE_SUFFIX)]
        suffix = PRESENCE_SUFFIX
    keys: list[str] = []
    index = base.find(".")
    while index != -1:
        keys.append(base[: index + 1] + "*" + suffix)
        index = base.find(".", index + 1)
    return keys


def is_wildcard(name: str) -> bool:
    return name.endswith(".*") or name.endswith(".*" + PRESENCE_SUFFIX)


class Subscription:
    """The channel set of one subscribe request, split into exact names and wildcards."""

    __slots__ = ("exact", "patterns")

    def __init__(self, channels: Iterable[str]) -> None:
        exact: set[str] = set()
        patterns: set[str] = set()
        for name in channels:
            (patterns if is_wildcard(name) else exact).add(name)
        self.exact = frozenset(exact)
        self.patterns = frozenset(patterns)

    def match(self, channel: str) -> tuple[bool, str | None]:
        """(matches, wildcard that matched or None for an exact match)."""
        if channel in self.exact:
            return True, None
        if self.patterns:
            for key in wildcard_keys(channel):
                if key in self.patterns:
                    return True, key
        return False, None

    @property
    def stored_channels(self) -> list[str]:
        """Exact channels that can have history (presence channels never do)."""
        return [name for name in self.exact if not name.endswith(PRESENCE_SUFFIX)]

    @property
    def stored_prefixes(self) -> list[str]:
        """Channel-name prefixes of the wildcards that can have history."""
        return [name[:-1] for name in self.patterns if not name.endswith(PRESENCE_SUFFIX)]


@dataclass(eq=False, slots=True)
class Waiter:
    """A held long-poll: collects matching envelopes until its handler responds."""

    subscription: Subscription
    future: asyncio.Future[None]
    items: list[tuple[int, str]] = field(default_factory=list)

    def deliver(self, timetoken: int, piece: str) -> None:
        self.items.append((timetoken, piece))
        if not self.future.done():
            self.future.set_result(None)

    def release(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class Keyspace:
    """Fan-out state of one subscribe key."""

    def __init__(self, sub_key: str, floor: int) -> None:
        self.sub_key = sub_key
        # Every envelope with a timetoken above `floor` is in the buffer.
        self.floor = floor
        self._tts: list[int] = []
        self._entries: list[Envelope] = []
        self._bytes = 0
        self._exact: dict[str, set[Waiter]] = {}
        self._wild: dict[str, set[Waiter]] = {}
        # Replaced (after being set) whenever a long-poll starts or ends, so
        # observers can wait for "N polls held" without sleeping.
        self._waiters_changed = asyncio.Event()

    # -- publishing ----------------------------------------------------------

    def publish(self, envelope: Envelope) -> int:
        """Buffer an envelope and hand it to matching waiters; returns how many matched."""
        self._tts.append(envelope.timetoken)
        self._entries.append(envelope)
        self._bytes += len(envelope.json)
        if len(self._entries) > RING_MAX_ENTRIES or self._bytes > RING_MAX_BYTES:
            self._trim()
        delivered = 0
        channel = envelope.channel
        exact = self._exact.get(channel)
        seen: set[Waiter] | None = None
        if exact:
            for waiter in exact:
                waiter.deliver(envelope.timetoken, envelope.json)
            delivered += len(exact)
            seen = exact
        if self._wild:
            for key in wildcard_keys(channel):
                waiters = self._wild.get(key)
                if not waiters:
                    continue
                piece: str | None = None
                for waiter in waiters:
                    if seen is not None and waiter in seen:
                        continue  # an exact subscription to the channel already got it
                    if piece is None:
                        piece = with_match(envelope, key)
                    waiter.deliver(envelope.timetoken, piece)
                    delivered += 1
                seen = waiters if seen is None else seen | waiters
        return delivered

    def _trim(self) -> None:
        # Drop a quarter of the buffer at once so trimming is amortized O(1).
        drop = max(len(self._entries) // 4, 1)
        self.floor = self._tts[drop - 1]
        self._bytes -= sum(len(entry.json) for entry in self._entries[:drop])
        del self._tts[:drop]
        del self._entries[:drop]

    # -- polling ---------------------------------------------------------------

    def buffered_since(self, subscription: Subscription, cursor: int) -> list[tuple[int, str]]:
        """Buffered envelopes after `cursor` that match the subscription."""
        start = bisect.bisect_right(self._tts, cursor)
        found: list[tuple[int, str]] = []
        entries = self._entries
        for index in range(start, len(entries)):
            envelope = entries[index]
            matched, key = subscription.match(envelope.channel)
            if matched:
                found.append((envelope.timetoken, with_match(envelope, key)))
        return found

    def register(self, subscription: Subscription) -> Waiter:
        waiter = Waiter(subscription, asyncio.get_running_loop().create_future())
        for name in subscription.exact:
            self._exact.setdefault(name, set()).add(waiter)
        for name in subscription.patterns:
            self._wild.setdefault(name, set()).add(waiter)
        self._notify_waiters_changed()
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        for index, names in (
            (self._exact, waiter.subscription.exact),
            (self._wild, waiter.subscription.patterns),
        ):
            for name in names:
                waiters = index.get(name)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del index[name]
        self._notify_waiters_changed()

    def _notify_waiters_changed(self) -> None:
        self._waiters_changed.set()
        self._waiters_changed = asyncio.Event()

    def release_all(self) -> None:
        """Answer every held long-poll now (used on shutdown)."""
        for index in (self._exact, self._wild):
            for waiters in index.values():
                for waiter in waiters:
                    waiter.release()

    def waiters_on(self, channel: str) -> int:
        """Long-polls currently held that subscribe to `channel` by name."""
        return len(self._exact.get(channel, ())) + len(self._wild.get(channel, ()))

    async def wait_for_waiters(self, predicate: Callable[[Keyspace], bool]) -> None:
        """Return once `predicate(self)` holds, re-checking whenever a poll starts or ends."""
        while not predicate(self):
            await self._waiters_changed.wait()


def collect_since(
    keyspace: Keyspace,
    store: Store,
    subscription: Subscription,
    cursor: int,
    limit: int = MAX_MESSAGES_PER_RESPONSE,
) -> tuple[list[tuple[int, str]], bool]:
    """Everything after `cursor` for a subscription: (items, truncated).

    When the cursor predates the buffer, stored history fills the gap up to
    the buffer floor; envelopes that were never stored (signals, presence,
    ``store=0``) from before the buffer are gone, as on PubNub.
    """
    items: list[tuple[int, str]] = []
    if cursor < keyspace.floor:
        stored = store.messages_after(
            keyspace.sub_key,
            subscription.stored_channels,
            subscription.stored_prefixes,
            after=cursor,
            upto=keyspace.floor,
            limit=limit + 1,
        )
        for message in stored:
            matched, key = subscription.match(message.channel)
            if matched:
                items.append((message.timetoken, with_match(envelope_from_stored(message), key)))
        if len(items) > limit:
            return items[:limit], True
    items.extend(keyspace.buffered_since(subscription, max(cursor, keyspace.floor)))
    if len(items) > limit:
        return items[:limit], True
    return items, False


def subscribe_body(timetoken: int, pieces: Sequence[str]) -> str:
    """The subscribe response document: ``{"t": {"t", "r"}, "m": [...]}``."""
    return f'{{"t":{{"t":"{timetoken}","r":{REGION}}},"m":[{",".join(pieces)}]}}'
