"""Message Persistence: fetch (v3), legacy history (v2) and delete.

``GET    /v3/history/sub-key/{sub}/channel/{channels}``              fetch_messages
``GET    /v3/history-with-actions/sub-key/{sub}/channel/{channel}``  fetch with actions
``DELETE /v3/history/sub-key/{sub}/channel/{channel}``               delete_messages
``GET    /v2/history/sub-key/{sub}/channel/{channel}``               history

Bounds follow PubNub: ``start`` is exclusive, ``end`` inclusive. A page is
the newest ``max`` messages of the range, except that a range given only by
``end`` (or v2's ``reverse=true``) pages forward from its oldest message.
Pages are in ascending timetoken order. Stored message text is embedded as
is, so responses are assembled as strings instead of re-parsing every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from reflex_hub.errors import dumps, history_error, json_response, text_response
from reflex_hub.paths import PathError, RawTarget, split_channels
from reflex_hub.pubsub import KIND_MESSAGE
from reflex_hub.store import StoredMessage
from reflex_hub.timetokens import parse_timetoken

if TYPE_CHECKING:
    from reflex_hub.core import HubCore

SINGLE_CHANNEL_MAX = 100
MULTI_CHANNEL_MAX = 25
WITH_ACTIONS_MAX = 25


def _channels(args: dict[str, str]) -> list[str]:
    try:
        channels = split_channels(args["channels"])
    except PathError as exc:
        raise history_error(400, str(exc)) from None
    if not channels:
        raise history_error(400, "No channel given")
    return channels


def _bounds(target: RawTarget) -> tuple[int | None, int | None]:
    try:
        return parse_timetoken(target.query.get("start")), parse_timetoken(target.query.get("end"))
    except ValueError:
        raise history_error(400, "Invalid start or end timetoken") from None


def _count(raw: str | None, default: int, cap: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise history_error(400, "Invalid max/count") from None
    # The SDK does the same clamping client-side; out-of-range means default.
    return default if value < 1 or value > cap else value


def _true(target: RawTarget, name: str) -> bool:
    return target.query.get(name, "").lower() == "true"


def _v3_item(message: StoredMessage, target: RawTarget) -> str:
    parts = ['{"message":', message.message, ',"timetoken":"', str(message.timetoken), '"']
    if _true(target, "include_meta") and message.meta is not None:
        parts += [',"meta":', message.meta]
    if _true(target, "include_uuid") and message.publisher:
        parts += [',"uuid":', dumps(message.publisher)]
    if _true(target, "include_message_type"):
        # Regular messages have type null in v3 history; files are 4.
        kind = "null" if message.kind == KIND_MESSAGE else str(message.kind)
        parts += [',"message_type":', kind]
    if _true(target, "include_custom_message_type") and message.custom_type:
        parts += [',"custom_message_type":', dumps(message.custom_type)]
    parts.append("}")
    return "".join(parts)


def _fetch_v3(
    core: HubCore, target: RawTarget, sub_key: str, channels: list[str], cap: int
) -> web.Response:
    start, end = _bounds(target)
    limit = _count(target.query.get("max"), cap, cap)
    sections: list[str] = []
    for channel in channels:
        messages = core.store.fetch_messages(
            sub_key,
            channel,
            start=start,
            end=end,
            limit=limit,
            oldest_first=start is None and end is not None,
        )
        if messages:
            items = ",".join(_v3_item(message, target) for message in messages)
            sections.append(f"{dumps(channel)}:[{items}]")
    body = '{"status":200,"channels":{' + ",".join(sections) + '},"error_message":"","error":false}'
    return text_response(body)


async def fetch_messages(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channels = _channels(args)
    cap = SINGLE_CHANNEL_MAX if len(channels) == 1 else MULTI_CHANNEL_MAX
    return _fetch_v3(core, target, sub_key, channels, cap)


async def fetch_messages_with_actions(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """Message actions are not implemented, so every message has none."""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channels = _channels(args)
    if len(channels) != 1:
        raise history_error(400, "history-with-actions takes exactly one channel")
    return _fetch_v3(core, target, sub_key, channels, WITH_ACTIONS_MAX)


async def delete_messages(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    start, end = _bounds(target)
    low, high = start, end
    if low is not None and high is not None and low > high:
        low, high = high, low
    for channel in _channels(args):
        core.store.delete_messages(sub_key, channel, low, high)
    return json_response({"status": 200, "error": False, "error_message": ""})


async def history_v2(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """``[[messages...], first_timetoken, last_timetoken]``."""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channels = _channels(args)
    if len(channels) != 1:
        raise history_error(400, "v2 history takes exactly one channel")
    start, end = _bounds(target)
    limit = _count(target.query.get("count"), SINGLE_CHANNEL_MAX, SINGLE_CHANNEL_MAX)
    reverse = _true(target, "reverse")
    messages = core.store.fetch_messages(
        sub_key,
        channels[0],
        start=start,
        end=end,
        limit=limit,
        oldest_first=reverse or (start is None and end is not None),
    )
    with_token = _true(target, "include_token")
    with_meta = _true(target, "include_meta")
    items: list[str] = []
    for message in messages:
        if not with_token and not with_meta:
            items.append(message.message)
            continue
        parts = ['{"message":', message.message]
        if with_token:
            parts += [',"timetoken":', str(message.timetoken)]
        if with_meta and message.meta is not None:
            parts += [',"meta":', message.meta]
        parts.append("}")
        items.append("".join(parts))
    first = messages[0].timetoken if messages else 0
    last = messages[-1].timetoken if messages else 0
    return text_response(f"[[{','.join(items)}],{first},{last}]")
