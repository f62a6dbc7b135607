"""The few PubNub REST calls the benchmarks make, as raw aiohttp requests.

Why not the SDK: a benchmark that simulates 200 publishers or 100 joining agents must not
be limited by its own client. A raw request costs a fraction of an SDK call, so what is
measured is the hub and the product, not the load generator. The requests are the ones
the SDK sends (same paths, same bodies); the product under test always uses the real SDK.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from reflex_core.config import LOCAL_PUB_KEY, LOCAL_SUB_KEY

PUB = LOCAL_PUB_KEY
SUB = LOCAL_SUB_KEY

#: Called with the envelopes of one subscribe response and the time it arrived.
BatchCallback = Callable[[list[dict[str, Any]], float], None]


def _q(text: str) -> str:
    return quote(text, safe="")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def publish(
    session: aiohttp.ClientSession,
    url: str,
    channel: str,
    body: bytes,
    *,
    uuid: str,
    store: bool = True,
) -> int:
    """POST publish (what the facade uses); returns the timetoken."""
    target = f"{url}/publish/{PUB}/{SUB}/0/{_q(channel)}/0"
    params = {"uuid": uuid, "store": "1" if store else "0"}
    async with session.post(
        target, params=params, data=body, headers={"Content-Type": "application/json"}
    ) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"publish to {channel} failed: {response.status} {text[:200]}")
        return int(json.loads(text)[2])


async def set_uuid_metadata(
    session: aiohttp.ClientSession,
    url: str,
    uuid: str,
    *,
    name: str,
    custom: Mapping[str, Any] | None = None,
) -> None:
    body: dict[str, Any] = {"name": name}
    if custom is not None:
        body["custom"] = dict(custom)
    target = f"{url}/v2/objects/{SUB}/uuids/{_q(uuid)}"
    async with session.patch(target, params={"uuid": uuid}, data=dumps(body)) as response:
        if response.status != 200:
            raise RuntimeError(f"set uuid metadata {uuid}: {response.status}")
        await response.read()


async def set_members(
    session: aiohttp.ClientSession, url: str, channel: str, uuids: Iterable[str], *, uuid: str
) -> None:
    """Add members to a channel (at most 100 per request, as PubNub requires)."""
    ids = list(uuids)
    target = f"{url}/v2/objects/{SUB}/channels/{_q(channel)}/uuids"
    for start in range(0, len(ids), 100):
        body = {"set": [{"uuid": {"id": ident}} for ident in ids[start : start + 100]]}
        async with session.patch(target, params={"uuid": uuid}, data=dumps(body)) as response:
            if response.status != 200:
                raise RuntimeError(f"set members of {channel}: {response.status}")
            await response.read()


async def join_channel(
    session: aiohttp.ClientSession, url: str, channel: str, *, uuid: str
) -> None:
    """Make `uuid` a member of `channel` from the uuid side, as `reflex-agent join` does."""
    target = f"{url}/v2/objects/{SUB}/uuids/{_q(uuid)}/channels"
    body = {"set": [{"channel": {"id": channel}}]}
    async with session.patch(target, params={"uuid": uuid}, data=dumps(body)) as response:
        if response.status != 200:
            raise RuntimeError(f"join {channel} as {uuid}: {response.status}")
        await response.read()


async def heartbeat(
    session: aiohttp.ClientSession,
    url: str,
    channels: Iterable[str],
    *,
    uuid: str,
    presence_timeout: int,
) -> None:
    """A presence heartbeat: makes `uuid` present (a join event) on `channels`."""
    names = ",".join(_q(name) for name in channels)
    target = f"{url}/v2/presence/sub-key/{SUB}/channel/{names}/heartbeat"
    async with session.get(
        target, params={"uuid": uuid, "heartbeat": str(presence_timeout)}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"heartbeat for {uuid}: {response.status}")
        await response.read()


class RawSubscriber:
    """A subscribe long-poll loop (handshake, then `tt`/`tr` cursors) that hands every
    response's envelopes to a callback with their arrival time. Counts its own requests,
    so a benchmark can subtract them from the hub's totals."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        channels: Iterable[str],
        *,
        uuid: str,
        on_batch: BatchCallback,
    ) -> None:
        self.session = session
        self.url = url
        self.channels = ",".join(_q(name) for name in channels)
        self.uuid = uuid
        self.on_batch = on_batch
        self.requests = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"subscriber {self.uuid}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _get(self, params: dict[str, str]) -> dict[str, Any]:
        target = f"{self.url}/v2/subscribe/{SUB}/{self.channels}/0"
        self.requests += 1
        async with self.session.get(
            target, params=params, timeout=aiohttp.ClientTimeout(total=330)
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"subscribe failed: {response.status} {body[:200]!r}")
        data: dict[str, Any] = json.loads(body)
        return data

    async def _run(self) -> None:
        data = await self._get({"tt": "0", "uuid": self.uuid})
        cursor = data["t"]
        self.connected.set()
        while True:
            params = {"tt": str(cursor["t"]), "tr": str(cursor["r"]), "uuid": self.uuid}
            data = await self._get(params)
            arrived = time.monotonic()
            cursor = data["t"]
            if data["m"]:
                self.on_batch(data["m"], arrived)


async def hub_ping(session: aiohttp.ClientSession, url: str) -> None:
    """`GET /time/0`: opens the session's keep-alive connection before a timed run."""
    async with session.get(f"{url}/time/0") as response:
        await response.read()


class _Response(asyncio.Protocol):
    """Just enough HTTP/1.1 to read one keep-alive response at a time (status + length)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        marker = head.find(b"content-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker)
            length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))


class FastPublisher:
    """One keep-alive connection that POSTs publishes with hand-built HTTP/1.1 requests.

    A load generator built on aiohttp's client spends about as much CPU per request as
    the hub does serving it; on a 2-core machine that halves the load the hub can be
    offered. This writes the request bytes directly and reads only the status line and
    `Content-Length`, a small fraction of that cost, so the hub is what gets measured.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _Response | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Response, self.host, self.port)
        self._protocol = protocol

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    async def publish(self, channel: str, body: bytes, *, uuid: str) -> None:
        protocol = self._protocol
        if protocol is None or protocol.lost:
            await self.connect()
            protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        head = (
            f"POST /publish/{PUB}/{SUB}/0/{_q(channel)}/0?uuid={_q(uuid)}&store=1 HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(head + body)
        status = await protocol.waiter
        if status != 200:
            raise RuntimeError(f"publish to {channel} failed: HTTP {status}")
