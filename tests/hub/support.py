"""Helpers for driving the real SDK against a hub in tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.request import Request, urlopen

import aiohttp
from pubnub.callbacks import SubscribeCallback
from pubnub.enums import PNStatusCategory
from pubnub.models.consumer.common import PNStatus
from pubnub.pubnub_asyncio import PubNubAsyncio

from reflex_hub import HubHandle

T = TypeVar("T")

#: The ``make_pubnub`` fixture: ``make_pubnub(hub, user_id, **config) -> PubNubAsyncio``.
PubNubFactory = Callable[..., PubNubAsyncio]


class HubFactory(Protocol):
    """The ``hub_factory`` fixture (see tests/conftest.py)."""

    def __call__(
        self,
        *,
        data_dir: Path | None = None,
        memory: bool = False,
        port: int = 0,
        pub_key: str | None = None,
        sub_key: str | None = None,
    ) -> Awaitable[HubHandle]: ...


#: Upper bound for any single wait in a test; events normally arrive in milliseconds.
WAIT = 5.0


async def next_item(
    queue: asyncio.Queue[T], predicate: Callable[[T], bool] | None = None, within: float = WAIT
) -> T:
    """The next queued item (matching `predicate`), or a TimeoutError after `within` s."""
    async with asyncio.timeout(within):
        while True:
            item = await queue.get()
            if predicate is None or predicate(item):
                return item


class Collector(SubscribeCallback):
    """A listener that queues every callback so tests can await them."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.statuses: asyncio.Queue[PNStatus] = asyncio.Queue()
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.presence_events: asyncio.Queue[Any] = asyncio.Queue()
        self.signals: asyncio.Queue[Any] = asyncio.Queue()
        self.uuid_events: asyncio.Queue[Any] = asyncio.Queue()
        self.channel_events: asyncio.Queue[Any] = asyncio.Queue()
        self.membership_events: asyncio.Queue[Any] = asyncio.Queue()
        self.files: asyncio.Queue[Any] = asyncio.Queue()

    def status(self, pubnub: Any, status: PNStatus) -> None:
        if status.category == PNStatusCategory.PNConnectedCategory:
            self.connected.set()
        self.statuses.put_nowait(status)

    def message(self, pubnub: Any, message: Any) -> None:
        self.messages.put_nowait(message)

    def presence(self, pubnub: Any, presence: Any) -> None:
        self.presence_events.put_nowait(presence)

    def signal(self, pubnub: Any, signal: Any) -> None:
        self.signals.put_nowait(signal)

    def uuid(self, pubnub: Any, uuid: Any) -> None:
        self.uuid_events.put_nowait(uuid)

    def channel(self, pubnub: Any, channel: Any) -> None:
        self.channel_events.put_nowait(channel)

    def membership(self, pubnub: Any, membership: Any) -> None:
        self.membership_events.put_nowait(membership)

    def file(self, pubnub: Any, file_message: Any) -> None:
        self.files.put_nowait(file_message)

    async def wait_connected(self, within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            await self.connected.wait()


async def subscribed(
    client: PubNubAsyncio,
    channels: list[str],
    *,
    with_presence: bool = False,
    timetoken: int | None = None,
) -> Collector:
    """Subscribe `client` and return its collector once the handshake completed."""
    collector = Collector()
    client.add_listener(collector)
    builder = client.subscribe().channels(channels)
    if with_presence:
        builder = builder.with_presence()
    if timetoken is not None:
        builder = builder.with_timetoken(timetoken)
    builder.execute()
    await collector.wait_connected()
    return collector


async def http(
    hub: HubHandle,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A raw request to the hub: (status, parsed JSON body or raw bytes, headers)."""
    data = body.encode() if isinstance(body, str) else body
    # A bounded wait: a hub that hangs fails the test instead of stalling the suite.
    timeout = aiohttp.ClientTimeout(total=2 * WAIT)
    async with (
        aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session,
        session.request(
            method, hub.url + path, data=data, headers=headers, allow_redirects=False
        ) as response,
    ):
        raw = await response.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return response.status, parsed, dict(response.headers)


def blocking_get(url: str, timeout: float = WAIT) -> tuple[int, bytes]:
    """A plain synchronous GET (for talking to a hub in another process)."""
    with urlopen(Request(url), timeout=timeout) as response:  # noqa: S310 - local test URL
        return int(response.status), response.read()
