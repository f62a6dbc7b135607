"""Publish results in order, surviving outages of the network or the hub.

Checks keep running while the network is down; their results are kept in a
bounded queue and sent, oldest first and with their original timestamps, once
publishing works again. One consumer task means order is preserved without
locks. An outage is logged once when it starts and once when it ends, never
once per failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_LIMIT = 500


class Outbox(Generic[T]):
    """A bounded FIFO drained by one task that retries the head until it is sent."""

    def __init__(
        self,
        send: Callable[[T], Awaitable[object]],
        *,
        limit: int = DEFAULT_LIMIT,
        retry_min: float = 0.5,
        retry_max: float = 5.0,
    ) -> None:
        self._send = send
        self._queue: deque[T] = deque()
        self._limit = limit
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._has_items = asyncio.Event()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        self.sent = 0
        self.failing = False

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: T) -> None:
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "outbox full (%d messages): dropped %d oldest result message(s) so far",
                    self._limit,
                    self.dropped,
                )
        self._queue.append(item)
        self._idle.clear()
        self._has_items.set()

    def poke(self) -> None:
        """Retry now instead of waiting out the back-off (e.g. the bus reconnected)."""
        self._wake.set()

    async def drained(self) -> None:
        """Wait until everything queued so far has been sent."""
        await self._idle.wait()

    async def run(self) -> None:
        delay = self._retry_min
        while True:
            if not self._queue:
                self._has_items.clear()
                self._idle.set()
                await self._has_items.wait()
                continue
            item = self._queue[0]
            try:
                await self._send(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "retry later"
                if not self.failing:
                    self.failing = True
                    log.warning(
                        "cannot publish results (%s); keeping them (up to %d) until it works",
                        exc,
                        self._limit,
                    )
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, self._retry_max)
                continue
            # Sent: only now remove it, so a cancelled send is retried, not lost.
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            self.sent += 1
            delay = self._retry_min
            if self.failing:
                self.failing = False
                log.warning("publishing works again; %d queued message(s) to send", len(self))
