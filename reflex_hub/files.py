"""File Sharing: upload slots, the upload itself, listing, download redirects, deletion.

PubNub's flow, reproduced with the hub standing in for S3::

    POST /v1/files/{sub}/channels/{ch}/generate-upload-url   {"name": ...}
         -> id, name, and an absolute upload URL on this hub with form fields
    POST <upload URL>  multipart form: the fields, then "file"   -> 204
    GET  /v1/files/publish-file/...                              (see publish.py)
    GET  /v1/files/{sub}/channels/{ch}/files?limit=&next=        -> list
    GET  /v1/files/{sub}/channels/{ch}/files/{id}/{name}         -> 307 to the bytes
    DELETE (same path)                                           -> {"status": 200}

Absolute URLs are built from the request's own scheme and Host header, so
they point at whatever address the client used to reach the hub.
File bytes live under ``<data dir>/files`` (or in memory with ``--memory``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import mimetypes
import os
import secrets
import time
import uuid as uuid_module
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from reflex_hub.errors import JSON_CONTENT_TYPE, files_error, json_response
from reflex_hub.paths import RawTarget, required_segment
from reflex_hub.publish import read_body
from reflex_hub.store import FileRecord

if TYPE_CHECKING:
    from reflex_hub.core import HubCore

#: PubNub's file size cap (the S3 policy's content-length-range).
MAX_FILE_BYTES = 5 * 1024 * 1024
#: How long an upload slot stays valid.
UPLOAD_SLOT_SECONDS = 3600
#: An oversized upload is drained up to this size so the client reads the error.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
#: Internal paths the hub serves in place of S3.
UPLOAD_PATH = "/_hub/files/upload"
DOWNLOAD_PREFIX = "/_hub/files"
UPLOAD_TOKEN_FIELD = "x-hub-upload-token"
DEFAULT_LIST_LIMIT = 100


class BlobStore(Protocol):
    """Where file bytes live, keyed by file id."""

    async def put(self, file_id: str, data: bytes) -> None: ...

    async def get(self, file_id: str) -> bytes | None: ...

    async def delete(self, file_id: str) -> None: ...


class MemoryBlobs:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def put(self, file_id: str, data: bytes) -> None:
        self._blobs[file_id] = data

    async def get(self, file_id: str) -> bytes | None:
        return self._blobs.get(file_id)

    async def delete(self, file_id: str) -> None:
        self._blobs.pop(file_id, None)


class DiskBlobs:
    """One file per blob, named by the hub-generated id (never by client input)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, file_id: str) -> Path:
        # Ids are uuid4 strings the hub made; reject anything else outright.
        return self._directory / str(uuid_module.UUID(file_id))

    async def put(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(file_id), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Write then rename so a crash never leaves a truncated file behind.
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    async def get(self, file_id: str) -> bytes | None:
        path = self._path(file_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self._path(file_id).unlink, True)


@dataclass(frozen=True)
class PendingUpload:
    sub_key: str
    channel: str
    file_id: str
    name: str
    expires: float


def _base_url(request: web.BaseRequest) -> str:
    return f"{request.scheme}://{request.host}"


def _download_url(request: web.BaseRequest, sub_key: str, file_id: str, name: str) -> str:
    path = f"{DOWNLOAD_PREFIX}/{quote(sub_key, safe='')}/{file_id}/{quote(name, safe='')}"
    return _base_url(request) + path


def _segment(args: dict[str, str], name: str) -> str:
    return required_segment(args, name, files_error)


def _files_response(body: object, status: int = 200) -> web.Response:
    return json_response(body, status=status, content_type=JSON_CONTENT_TYPE)


async def generate_upload_url(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    try:
        body = await read_body(request, 64 * 1024)
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise files_error(400, "Request body must be JSON with a file name") from None
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name or "/" in name or len(name) > 255:
        raise files_error(400, "Invalid file name")
    _drop_expired(core)
    file_id = str(uuid_module.uuid4())
    token = secrets.token_hex(16)
    core.pending_uploads[token] = PendingUpload(
        sub_key, channel, file_id, name, time.monotonic() + UPLOAD_SLOT_SECONDS
    )
    expiration = datetime.now(UTC) + timedelta(seconds=UPLOAD_SLOT_SECONDS)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _files_response(
        {
            "status": 200,
            "data": {"id": file_id, "name": name},
            "file_upload_request": {
                "url": _base_url(request) + UPLOAD_PATH,
                "method": "POST",
                "expiration_date": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "form_fields": [
                    {"key": "key", "value": f"{sub_key}/{channel}/{file_id}/{name}"},
                    {"key": "Content-Type", "value": content_type},
                    {"key": UPLOAD_TOKEN_FIELD, "value": token},
                ],
            },
        }
    )


def _drop_expired(core: HubCore) -> None:
    now = time.monotonic()
    for token in [token for token, slot in core.pending_uploads.items() if slot.expires < now]:
        del core.pending_uploads[token]


async def upload(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """The S3-style multipart POST; answers 204 with a Location like S3."""
    if not request.content_type.startswith("multipart/"):
        raise files_error(400, "Upload must be multipart/form-data")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise files_error(400, "Malformed multipart body") from None
    token: str | None = None
    data: bytes | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise files_error(400, "Nested multipart bodies are not supported")
            if part.name == UPLOAD_TOKEN_FIELD:
                token = (await part.read(decode=False)).decode("utf-8", "replace").strip()
            elif part.name == "file":
                data = await _read_limited(part)
            else:
                await part.release()
    except (ValueError, AssertionError):
        raise files_error(400, "Malformed multipart body") from None
    slot = core.pending_uploads.get(token or "")
    if slot is None or slot.expires < time.monotonic():
        raise files_error(403, "Upload slot unknown or expired; request a new upload URL")
    if data is None:
        raise files_error(400, "The form has no file field")
    del core.pending_uploads[token or ""]
    await core.blobs.put(slot.file_id, data)
    core.store.add_file(
        FileRecord(
            sub_key=slot.sub_key,
            channel=slot.channel,
            id=slot.file_id,
            name=slot.name,
            size=len(data),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )
    location = _download_url(request, slot.sub_key, slot.file_id, slot.name)
    return web.Response(status=204, headers={"Location": location})


async def _read_limited(part: BodyPartReader) -> bytes:
    data = bytearray()
    total = 0
    while chunk := await part.read_chunk(256 * 1024):
        total += len(chunk)
        if total <= MAX_FILE_BYTES:
            data += chunk
        elif total > DRAIN_LIMIT_BYTES:
            break
    if total > MAX_FILE_BYTES:
        # The rest of an oversized body is read and dropped (up to a bound)
        # before answering: a client still writing its body when the server
        # answers and closes sees a reset connection instead of this error.
        raise files_error(
            400, f"Your proposed upload exceeds the maximum allowed size ({MAX_FILE_BYTES} bytes)"
        )
    return bytes(data)


def _encode_next(file_id: str) -> str:
    return base64.urlsafe_b64encode(file_id.encode()).rstrip(b"=").decode()


def _decode_next(token: str) -> str:
    try:
        padded = (token + "=" * (-len(token) % 4)).encode()
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise files_error(400, "Invalid next cursor") from None


async def list_files(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    try:
        limit = int(target.query.get("limit") or DEFAULT_LIST_LIMIT)
    except ValueError:
        raise files_error(400, "Invalid limit") from None
    limit = min(max(limit, 1), DEFAULT_LIST_LIMIT)
    after = _decode_next(target.query["next"]) if target.query.get("next") else None
    records = core.store.list_files(sub_key, channel, after_id=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return _files_response(
        {
            "status": 200,
            "data": [
                {"name": r.name, "id": r.id, "size": r.size, "created": r.created} for r in records
            ],
            "next": _encode_next(records[-1].id) if more else None,
            "count": len(records),
        }
    )


async def download_redirect(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """307 to the bytes, as PubNub redirects to a signed S3 URL."""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    record = core.store.get_file(sub_key, channel, _segment(args, "file_id"))
    if record is None or record.name != _segment(args, "name"):
        raise files_error(404, "File not found")
    location = _download_url(request, sub_key, record.id, record.name)
    return web.Response(status=307, headers={"Location": location})


async def delete_file(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """Idempotent like S3: deleting an absent file still answers 200."""
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    file_id = _segment(args, "file_id")
    if core.store.delete_file(sub_key, channel, file_id):
        await core.blobs.delete(file_id)
    return _files_response({"status": 200})


async def serve_bytes(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """The redirect target: the stored bytes themselves."""
    sub_key = _segment(args, "sub_key")
    record = core.store.find_file(sub_key, _segment(args, "file_id"))
    if record is None or record.name != _segment(args, "name"):
        raise files_error(404, "File not found")
    data = await core.blobs.get(record.id)
    if data is None:
        raise files_error(404, "File not found")
    content_type = mimetypes.guess_type(record.name)[0] or "application/octet-stream"
    return web.Response(body=data, headers={"Content-Type": content_type})
