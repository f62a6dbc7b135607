"""Publish, signal, fire and file-message endpoints.

``GET  /publish/{pub}/{sub}/0/{channel}/0/{message}``
``POST /publish/{pub}/{sub}/0/{channel}/0`` (message is the body)
``GET  /signal/{pub}/{sub}/0/{channel}/0/{message}``
``GET  /v1/files/publish-file/{pub}/{sub}/0/{channel}/0/{message}``

Query: ``store`` (0 = keep out of history), ``norep`` (true = "fire": not
delivered to subscribers), ``meta`` (JSON, delivered as ``u``), ``uuid``
(publisher, delivered as ``i``), ``custom_message_type`` (delivered as ``cmt``).
Answer: ``[1, "Sent", "<timetoken>"]``; errors ``[0, "<reason>", "<timetoken>"]``.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from aiohttp import web

from reflex_hub.core import HubCore
from reflex_hub.errors import dumps, publish_error, text_response
from reflex_hub.paths import PathError, RawTarget, unquote_segment
from reflex_hub.pubsub import KIND_FILE, KIND_MESSAGE, KIND_SIGNAL, is_wildcard

#: PubNub's message size cap.
MAX_MESSAGE_BYTES = 32 * 1024
#: PubNub's signal payload cap.
MAX_SIGNAL_BYTES = 64
#: Bodies above this are refused before decompression or parsing.
MAX_BODY_BYTES = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every publish: `json.loads` with any keyword argument builds a new
#: JSONDecoder per call, which showed up in the hub's profile at 2,000 publishes/s.
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(text: str) -> Any:
    """Strict JSON: Python's parser accepts NaN and Infinity, PubNub does not."""
    return _STRICT_DECODER.decode(text)


async def read_body(request: web.BaseRequest, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, decompressed; None when it exceeds `limit`.

    The SDK's ``should_compress`` sends ``zlib.compress`` output labelled
    ``Content-Encoding: gzip``. aiohttp's automatic decompression is turned
    off (it would reject that with a plain-text 400), so both real gzip and
    zlib streams are accepted here (wbits 47 detects either header), with raw
    deflate as a fallback.
    """
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return bytes(body)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    for wbits in (47, -15):
        decompressor = zlib.decompressobj(wbits=wbits)
        try:
            data = decompressor.decompress(bytes(body), limit + 1)
        except zlib.error:
            continue
        if len(data) > limit:
            return None
        if decompressor.eof:
            return data
    raise ValueError("body is not valid gzip or deflate data")


def _flag(query: dict[str, str], name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    return value.strip().lower() in ("1", "true")


def do_publish(
    core: HubCore,
    target: RawTarget,
    *,
    pub_key: str,
    sub_key: str,
    raw_channel: str,
    message_text: str,
    kind: int,
) -> web.Response:
    """Validate and publish; shared by every publish-family endpoint."""
    core.check_publish_keys(pub_key, sub_key)
    query = target.query
    try:
        channel = unquote_segment(raw_channel)
    except PathError:
        raise publish_error(400, "Invalid Channel", core.clock.next()) from None
    if not channel or "," in channel or is_wildcard(channel):
        raise publish_error(400, "Invalid Channel", core.clock.next())
    size = len(message_text.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES or (kind == KIND_SIGNAL and size > MAX_SIGNAL_BYTES):
        raise publish_error(400, "Message Too Large", core.clock.next())
    try:
        message = parse_json(message_text)
    except ValueError:
        raise publish_error(400, "Invalid JSON", core.clock.next()) from None
    # Validated JSON text is stored and delivered as sent (minus surrounding
    # whitespace): re-serializing would cost a second pass over every message.
    payload_json = message_text.strip()
    if kind == KIND_FILE and not _is_file_message(message):
        raise publish_error(400, "Invalid File Message", core.clock.next())

    meta_json: str | None = None
    raw_meta = query.get("meta")
    if raw_meta not in (None, "", "null"):
        try:
            meta = parse_json(raw_meta)
        except ValueError:
            raise publish_error(400, "Invalid JSON in meta", core.clock.next()) from None
        if meta is not None:
            meta_json = dumps(meta)

    store = _flag(query, "store")
    no_replication = _flag(query, "norep")
    timetoken = core.publish(
        sub_key=sub_key,
        channel=channel,
        payload_json=payload_json,
        kind=kind,
        publisher=query.get("uuid") or None,
        meta_json=meta_json,
        custom_type=query.get("custom_message_type") or None,
        # Signals are never stored; everything else unless store=0.
        store=kind != KIND_SIGNAL and store is not False,
        deliver=not no_replication,
    )
    return text_response(f'[1,"Sent","{timetoken}"]')


def _is_file_message(message: Any) -> bool:
    # With a cipher key the SDK encrypts the whole file message into one base64
    # string; PubNub accepts that opaque form (recorded: encrypted publish-file
    # answers [1,"Sent",tt]), so the hub must too.
    if isinstance(message, str):
        return bool(message)
    if not isinstance(message, dict):
        return False
    file_info = message.get("file")
    return (
        isinstance(file_info, dict)
        and isinstance(file_info.get("id"), str)
        and isinstance(file_info.get("name"), str)
    )


def _message_from_path(core: HubCore, raw: str) -> str:
    try:
        return unquote_segment(raw)
    except PathError:
        raise publish_error(400, "Invalid JSON", core.clock.next()) from None


async def publish_get(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    return do_publish(
        core,
        target,
        pub_key=args["pub_key"],
        sub_key=args["sub_key"],
        raw_channel=args["channel"],
        message_text=_message_from_path(core, args["message"]),
        kind=KIND_MESSAGE,
    )


async def publish_post(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    core.check_publish_keys(args["pub_key"], args["sub_key"])
    try:
        body = await read_body(request)
    except ValueError:
        raise publish_error(400, "Invalid Compressed Body", core.clock.next()) from None
    if body is None:
        raise publish_error(400, "Message Too Large", core.clock.next())
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise publish_error(400, "Invalid JSON", core.clock.next()) from None
    return do_publish(
        core,
        target,
        pub_key=args["pub_key"],
        sub_key=args["sub_key"],
        raw_channel=args["channel"],
        message_text=text,
        kind=KIND_MESSAGE,
    )


async def signal_get(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    return do_publish(
        core,
        target,
        pub_key=args["pub_key"],
        sub_key=args["sub_key"],
        raw_channel=args["channel"],
        message_text=_message_from_path(core, args["message"]),
        kind=KIND_SIGNAL,
    )


async def publish_file_message(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    return do_publish(
        core,
        target,
        pub_key=args["pub_key"],
        sub_key=args["sub_key"],
        raw_channel=args["channel"],
        message_text=_message_from_path(core, args["message"]),
        kind=KIND_FILE,
    )
