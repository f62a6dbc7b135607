"""Typed events and records produced by the PubNub facade (`reflex_core.bus`).

Plain frozen dataclasses with no pubnub import: the dashboard state and the agent consume them
(and tests build them by hand) without depending on the SDK's result classes, which change
between SDK releases and carry half-parsed wire data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ChannelMember",
    "ConnectionEvent",
    "ConnectionState",
    "FileEvent",
    "FileInfo",
    "HistoryEntry",
    "MembershipEvent",
    "Message",
    "PresenceAction",
    "PresenceEvent",
    "SentFile",
    "UndecryptableMessage",
    "UuidMetadata",
    "UuidMetadataEvent",
    "undecryptable_hint",
]


def undecryptable_hint(channel: str) -> str:
    """The one sentence both programs show when content on `channel` cannot be decrypted."""
    return f"messages on {channel} cannot be decrypted: is cipher_key the same everywhere?"


@dataclass(frozen=True, slots=True)
class Message:
    """A published message delivered by the subscription.

    `channel` is where it was published (attribute results by this, never by the payload);
    `subscription` is the wildcard that matched (``device.*``) or None for an exact channel.
    `publisher` is the sender's user id as PubNub reports it.
    """

    channel: str
    subscription: str | None
    publisher: str | None
    timetoken: int
    payload: Any
    meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UndecryptableMessage:
    """A message or file event that could not be decrypted (wrong, missing or extra cipher key).

    Delivered instead of a `Message`/`FileEvent` so garbage never reaches protocol parsing and
    the user gets one clear hint (`describe()`).
    """

    channel: str
    subscription: str | None
    publisher: str | None
    timetoken: int
    kind: str  # "message" or "file"
    reason: str

    def describe(self) -> str:
        return undecryptable_hint(self.channel)


class PresenceAction(StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    TIMEOUT = "timeout"
    STATE_CHANGE = "state-change"
    # PubNub batches presence above its announce_max (20 by default) into interval events
    # carrying lists instead of one uuid; a 500-device fleet gets these on real PubNub.
    INTERVAL = "interval"


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """Presence on `channel` (the data channel, without ``-pnpres``)."""

    channel: str
    action: PresenceAction | str
    uuid: str | None
    occupancy: int
    timetoken: int
    state: dict[str, Any] | None = None
    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    timed_out: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    """App Context: `uuid` became ("set") or stopped being ("delete") a member of `channel`."""

    channel: str
    uuid: str
    action: str  # "set" or "delete"
    custom: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UuidMetadataEvent:
    """App Context: uuid metadata of `uuid` was set or deleted.

    On "set" PubNub sends the fields that changed; absent ones are None here.
    """

    uuid: str
    action: str  # "set" or "delete"
    name: str | None = None
    custom: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FileEvent:
    """A file was shared on `channel` (File Sharing's publish-file message)."""

    channel: str
    subscription: str | None
    publisher: str | None
    file_id: str
    file_name: str
    message: Any
    timetoken: int


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """The subscription's connection changed.

    `since` is the wall-clock time (unix seconds) the state began, so the dashboard can show
    "reconnecting since hh:mm:ss" from one event.
    """

    state: ConnectionState
    since: float
    detail: str = ""

    @property
    def connected(self) -> bool:
        return self.state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED)


@dataclass(frozen=True, slots=True)
class ChannelMember:
    """A member of an App Context channel with its uuid metadata (None fields when unset)."""

    uuid: str
    name: str | None = None
    custom: dict[str, Any] | None = None
    member_custom: dict[str, Any] | None = None
    updated: str | None = None


@dataclass(frozen=True, slots=True)
class UuidMetadata:
    uuid: str
    name: str | None = None
    custom: dict[str, Any] | None = None
    updated: str | None = None


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file stored on a channel (File Sharing list entry)."""

    id: str
    name: str
    size: int
    created: str


@dataclass(frozen=True, slots=True)
class SentFile:
    id: str
    name: str
    timetoken: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A stored message from history.

    `is_file` marks File Sharing messages (payload ``{"message": ..., "file": {"id", "name"}}``).
    `error` is set (and `payload` is the raw stored value) when the entry cannot be decrypted.
    """

    channel: str
    timetoken: int
    payload: Any
    publisher: str | None = None
    meta: dict[str, Any] | None = None
    is_file: bool = False
    error: str | None = field(default=None)
