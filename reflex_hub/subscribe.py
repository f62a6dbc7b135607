"""The subscribe long-poll: ``GET /v2/subscribe/{sub}/{channels}/0``.

``tt=0`` (or absent) is the handshake: answer at once with a fresh cursor and
no messages. Any other ``tt`` is a cursor: answer at once with what was
published after it, or hold the request until something matching is
published, the long-poll limit passes, or the client goes away.

Every poll is also a presence heartbeat (``heartbeat`` = presence timeout in
seconds, ``state`` = per-channel presence state), and a held poll keeps its
uuid present until it ends.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from reflex_hub.core import HubCore
from reflex_hub.errors import bad_request, text_response
from reflex_hub.paths import PathError, RawTarget, split_channels
from reflex_hub.presence import parse_heartbeat, parse_state, presence_channels
from reflex_hub.pubsub import (
    MAX_MESSAGES_PER_RESPONSE,
    Subscription,
    collect_since,
    subscribe_body,
)
from reflex_hub.timetokens import parse_timetoken


async def subscribe(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    query = target.query
    try:
        channels = split_channels(args["channels"])
    except PathError as exc:
        raise bad_request(str(exc)) from None
    if query.get("channel-group"):
        raise bad_request("channel groups are not supported by reflex-hub")
    if query.get("filter-expr"):
        raise bad_request("filter expressions are not supported by reflex-hub")
    if not channels:
        raise bad_request("no channels to subscribe to")
    try:
        cursor = parse_timetoken(query.get("tt")) or 0
    except ValueError:
        raise bad_request("invalid timetoken in tt") from None
    try:
        heartbeat = parse_heartbeat(query.get("heartbeat"))
    except ValueError:
        raise bad_request("invalid heartbeat") from None
    uuid = query.get("uuid", "")
    present = presence_channels(channels) if uuid else []
    try:
        states = parse_state(query.get("state"), present)
    except ValueError:
        raise bad_request("state must be a JSON object") from None

    if cursor == 0:
        # Allocate the cursor before joining, so the subscriber's own join
        # event orders after it and reaches the subscriber, as on PubNub.
        handshake = core.clock.next()
        if present:
            core.presence.heartbeat(sub_key, present, uuid, timeout=heartbeat, states=states)
        return text_response(subscribe_body(handshake, []))

    if present:
        core.presence.heartbeat(
            sub_key, present, uuid, timeout=heartbeat, states=states, poll_started=True
        )
    try:
        return await _poll(core, sub_key, Subscription(channels), cursor)
    finally:
        # Reached on answer, timeout and on a client that went away (aiohttp
        # cancels the handler): from here the presence timeout runs.
        if present:
            core.presence.poll_ended(sub_key, present, uuid)


async def _poll(
    core: HubCore, sub_key: str, subscription: Subscription, cursor: int
) -> web.Response:
    keyspace = core.keyspace(sub_key)
    items, truncated = collect_since(keyspace, core.store, subscription, cursor)
    if not items and not core.closing:
        waiter = keyspace.register(subscription)
        core.note_poll(+1)
        try:
            await asyncio.wait({waiter.future}, timeout=core.config.longpoll_seconds)
        finally:
            keyspace.unregister(waiter)
            core.note_poll(-1)
        items = waiter.items
        truncated = len(items) > MAX_MESSAGES_PER_RESPONSE
        if truncated:
            items = items[:MAX_MESSAGES_PER_RESPONSE]
    # Every envelope up to the clock's last token has been seen by this poll
    # (buffer scan plus waiter, both synchronous with publishing), so the next
    # cursor can be the clock itself (which also repairs a cursor from the
    # future); a truncated answer resumes after its last item instead.
    next_cursor = items[-1][0] if truncated else core.clock.last
    return text_response(subscribe_body(next_cursor, [piece for _, piece in items]))
