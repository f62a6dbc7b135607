"""Presence: who is on which channel, their state, and join/leave/timeout events.

A uuid joins a channel with its first subscribe poll or heartbeat there and
stays while it keeps polling or heartbeating. A held long-poll keeps it alive
for as long as the connection is open; once the poll ends (answered, or
abandoned by the client, which aiohttp reports by cancelling the handler) the
uuid has ``heartbeat`` seconds (the value the client sent, 300 by default as on
PubNub) to poll or heartbeat again before a sweep reports it as timed out.

Events are published on ``<channel>-pnpres`` through the normal fan-out and are
never stored, like PubNub's. Presence is in memory only: after a restart,
clients rejoin with their next poll or heartbeat.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reflex_hub.errors import json_response, presence_error
from reflex_hub.paths import PathError, RawTarget, split_channels, unquote_segment
from reflex_hub.pubsub import PRESENCE_SUFFIX, is_wildcard

if TYPE_CHECKING:
    from reflex_hub.core import HubCore

#: Presence timeout when a client never sends ``heartbeat`` (PubNub's default).
DEFAULT_PRESENCE_TIMEOUT = 300.0

Emit = Callable[[str, str, dict[str, Any]], None]


def presence_channels(channels: Iterable[str]) -> list[str]:
    """The channels of a request on which a uuid can be present.

    Presence channels and wildcards are subscriptions to events, not places
    to be present in.
    """
    return [
        name for name in channels if not name.endswith(PRESENCE_SUFFIX) and not is_wildcard(name)
    ]


def parse_state(raw: str | None, channels: list[str]) -> dict[str, dict[str, Any]] | None:
    """Presence state from a ``state`` query value, keyed by channel.

    The SDK sends ``{"<channel>": {...state...}}``; other clients send the
    state object itself, which then applies to every channel of the request.
    """
    if raw is None or raw == "":
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("state must be a JSON object")
    if value and all(key in channels and isinstance(item, dict) for key, item in value.items()):
        return {key: dict(item) for key, item in value.items()}
    return {channel: dict(value) for channel in channels}


def parse_heartbeat(raw: str | None) -> float | None:
    """The ``heartbeat`` query value in seconds; None when absent or not positive.

    Any positive value is honoured (PubNub raises values below 20 to 20); a
    short timeout is what lets tests watch a timeout happen quickly.
    """
    if raw is None or raw == "":
        return None
    value = float(raw)
    if value != value or value <= 0:  # NaN or non-positive: fall back to the default
        return None
    return value


@dataclass(slots=True)
class _Member:
    last_seen: float
    timeout: float
    polls: int = 0


class PresenceTracker:
    """Occupancy and state per (subscribe key, channel)."""

    def __init__(self, emit: Emit, clock: Callable[[], float] = time.monotonic) -> None:
        # emit(sub_key, channel, payload) publishes on "<channel>-pnpres".
        self._emit = emit
        self._clock = clock
        self._channels: dict[tuple[str, str], dict[str, _Member]] = {}
        self._by_uuid: dict[tuple[str, str], set[str]] = {}
        self._states: dict[tuple[str, str, str], dict[str, Any]] = {}

    # -- events --------------------------------------------------------------

    def _event(
        self, sub_key: str, channel: str, action: str, uuid: str, state: dict[str, Any] | None
    ) -> None:
        now = time.time()
        payload: dict[str, Any] = {
            "action": action,
            "uuid": uuid,
            "timestamp": int(now),
            "precise_timestamp": int(now * 1000),
            "occupancy": len(self._channels.get((sub_key, channel), ())),
        }
        if state is not None:
            payload["data"] = state
        self._emit(sub_key, channel, payload)

    # -- activity ----------------------------------------------------------------

    def heartbeat(
        self,
        sub_key: str,
        channels: Iterable[str],
        uuid: str,
        *,
        timeout: float | None = None,
        states: dict[str, dict[str, Any]] | None = None,
        poll_started: bool = False,
    ) -> None:
        """Record activity of `uuid` on `channels`: joins, state changes, liveness."""
        now = self._clock()
        for channel in channels:
            members = self._channels.setdefault((sub_key, channel), {})
            member = members.get(uuid)
            state = states.get(channel) if states else None
            if member is None:
                member = _Member(last_seen=now, timeout=timeout or DEFAULT_PRESENCE_TIMEOUT)
                members[uuid] = member
                self._by_uuid.setdefault((sub_key, uuid), set()).add(channel)
                if state is not None:
                    self._states[(sub_key, channel, uuid)] = state
                self._event(sub_key, channel, "join", uuid, state)
            else:
                member.last_seen = now
                if timeout is not None:
                    member.timeout = timeout
                if state is not None and self._states.get((sub_key, channel, uuid)) != state:
                    self._states[(sub_key, channel, uuid)] = state
                    self._event(sub_key, channel, "state-change", uuid, state)
            if poll_started:
                member.polls += 1

    def poll_ended(self, sub_key: str, channels: Iterable[str], uuid: str) -> None:
        """A held long-poll finished; the presence timeout starts counting now."""
        now = self._clock()
        for channel in channels:
            member = self._channels.get((sub_key, channel), {}).get(uuid)
            if member is not None:
                member.polls = max(member.polls - 1, 0)
                member.last_seen = now

    def leave(self, sub_key: str, channels: Iterable[str], uuid: str) -> None:
        for channel in channels:
            self._remove(sub_key, channel, uuid, "leave")

    def _remove(self, sub_key: str, channel: str, uuid: str, action: str) -> None:
        members = self._channels.get((sub_key, channel))
        if members is None or uuid not in members:
            return
        del members[uuid]
        if not members:
            del self._channels[(sub_key, channel)]
        joined = self._by_uuid.get((sub_key, uuid))
        if joined is not None:
            joined.discard(channel)
            if not joined:
                del self._by_uuid[(sub_key, uuid)]
        self._states.pop((sub_key, channel, uuid), None)
        self._event(sub_key, channel, action, uuid, None)

    def sweep(self) -> int:
        """Time out members whose heartbeat lapsed; returns how many timed out."""
        now = self._clock()
        expired = [
            (sub_key, channel, uuid)
            for (sub_key, channel), members in self._channels.items()
            for uuid, member in members.items()
            if member.polls == 0 and now - member.last_seen > member.timeout
        ]
        for sub_key, channel, uuid in expired:
            self._remove(sub_key, channel, uuid, "timeout")
        return len(expired)

    # -- state ---------------------------------------------------------------------

    def set_state(
        self, sub_key: str, channels: Iterable[str], uuid: str, state: dict[str, Any]
    ) -> None:
        for channel in channels:
            key = (sub_key, channel, uuid)
            changed = self._states.get(key) != state
            self._states[key] = state
            if changed and uuid in self._channels.get((sub_key, channel), {}):
                self._event(sub_key, channel, "state-change", uuid, state)

    def get_state(self, sub_key: str, channel: str, uuid: str) -> dict[str, Any]:
        return self._states.get((sub_key, channel, uuid), {})

    # -- queries ---------------------------------------------------------------------

    def occupants(self, sub_key: str, channel: str) -> list[str]:
        return sorted(self._channels.get((sub_key, channel), ()))

    def occupied_channels(self, sub_key: str) -> list[str]:
        return sorted(channel for (key, channel) in self._channels if key == sub_key)

    def where_now(self, sub_key: str, uuid: str) -> list[str]:
        return sorted(self._by_uuid.get((sub_key, uuid), ()))


# -- HTTP endpoints (under /v2/presence/sub-key/{sub}) ---------------------------------

_OK = {"status": 200, "message": "OK", "service": "Presence"}


def _channels(args: dict[str, str]) -> list[str]:
    try:
        return split_channels(args["channels"])
    except PathError as exc:
        raise presence_error(400, str(exc)) from None


def _uuid(target: RawTarget, args: dict[str, str] | None = None) -> str:
    try:
        uuid = (
            unquote_segment(args["uuid"]) if args and "uuid" in args else target.query.get("uuid")
        )
    except PathError as exc:
        raise presence_error(400, str(exc)) from None
    if not uuid:
        raise presence_error(400, "Missing uuid")
    return uuid


async def heartbeat(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../channel/{channels}/heartbeat?heartbeat=<timeout>&state=<json>``"""
    core.check_sub_key(args["sub_key"])
    channels = presence_channels(_channels(args))
    uuid = _uuid(target)
    try:
        timeout = parse_heartbeat(target.query.get("heartbeat"))
        states = parse_state(target.query.get("state"), channels)
    except ValueError:
        raise presence_error(400, "Invalid heartbeat or state") from None
    core.presence.heartbeat(args["sub_key"], channels, uuid, timeout=timeout, states=states)
    return json_response(_OK)


async def leave(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../channel/{channels}/leave``"""
    core.check_sub_key(args["sub_key"])
    core.presence.leave(args["sub_key"], presence_channels(_channels(args)), _uuid(target))
    return json_response({"status": 200, "message": "OK", "action": "leave", "service": "Presence"})


def _occupants(
    core: HubCore, sub_key: str, channel: str, target: RawTarget
) -> tuple[int, list[Any] | None]:
    """(occupancy, uuid entries or None when ``disable_uuids=1``)."""
    occupants = core.presence.occupants(sub_key, channel)
    if target.query.get("disable_uuids") == "1":
        return len(occupants), None
    try:
        offset = int(target.query.get("offset") or 0)
        limit = int(target.query.get("limit") or 1000)
    except ValueError:
        raise presence_error(400, "Invalid limit or offset") from None
    page = occupants[max(offset, 0) : max(offset, 0) + max(limit, 0)]
    if target.query.get("state") != "1":
        return len(occupants), list(page)
    entries: list[Any] = []
    for uuid in page:
        entry: dict[str, Any] = {"uuid": uuid}
        state = core.presence.get_state(sub_key, channel, uuid)
        if state:
            entry["state"] = state
        entries.append(entry)
    return len(occupants), entries


async def here_now(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../channel/{channels}`` (one or several channels) or the bare sub-key path (global)."""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    if target.query.get("channel-group"):
        raise presence_error(400, "channel groups are not supported by reflex-hub")
    requested = _channels(args) if "channels" in args else None
    if requested is not None and len(requested) == 1:
        # One channel: PubNub answers with a flat document.
        occupancy, uuids = _occupants(core, sub_key, requested[0], target)
        body: dict[str, Any] = dict(_OK)
        if uuids is not None:
            body["uuids"] = uuids
        body["occupancy"] = occupancy
        return json_response(body)
    names = core.presence.occupied_channels(sub_key) if requested is None else requested
    channels: dict[str, Any] = {}
    total = 0
    for channel in names:
        occupancy, uuids = _occupants(core, sub_key, channel, target)
        if occupancy == 0:
            continue  # PubNub lists occupied channels only
        entry: dict[str, Any] = {"occupancy": occupancy}
        if uuids is not None:
            entry["uuids"] = uuids
        channels[channel] = entry
        total += occupancy
    payload = {"channels": channels, "total_channels": len(channels), "total_occupancy": total}
    return json_response({**_OK, "payload": payload})


async def where_now(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../uuid/{uuid}``"""
    core.check_sub_key(args["sub_key"])
    channels = core.presence.where_now(args["sub_key"], _uuid(target, args))
    return json_response({**_OK, "payload": {"channels": channels}})


async def get_state(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../channel/{channels}/uuid/{uuid}``"""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channels = _channels(args)
    uuid = _uuid(target, args)
    if len(channels) == 1:
        state = core.presence.get_state(sub_key, channels[0], uuid)
        return json_response({**_OK, "uuid": uuid, "payload": state, "channel": channels[0]})
    states = {channel: core.presence.get_state(sub_key, channel, uuid) for channel in channels}
    return json_response({**_OK, "uuid": uuid, "payload": {"channels": states}})


async def set_state(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``.../channel/{channels}/uuid/{uuid}/data?state=<json object>``"""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channels = presence_channels(_channels(args))
    uuid = _uuid(target, args)
    try:
        state = json.loads(target.query.get("state") or "")
    except ValueError:
        raise presence_error(400, "Invalid state: expected a JSON object") from None
    if not isinstance(state, dict):
        raise presence_error(400, "Invalid state: expected a JSON object")
    core.presence.set_state(sub_key, channels, uuid, state)
    return json_response({**_OK, "payload": state})
