"""The outbox keeps order through failures and bounds what it holds."""

from __future__ import annotations

import asyncio

import pytest

from reflex_agent.outbox import Outbox


class FlakySink:
    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.got: list[int] = []
        self.attempts = 0
        self.retried = asyncio.Event()

    async def send(self, item: int) -> None:
        self.attempts += 1
        if self.attempts >= 3:
            self.retried.set()
        if not self.up.is_set():
            raise ConnectionError("hub down")
        self.got.append(item)


async def test_in_order_after_outage(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink()
    box: Outbox[int] = Outbox(sink.send, retry_min=0.01, retry_max=0.05)
    task = asyncio.create_task(box.run())
    try:
        for i in range(5):
            box.put(i)
        await asyncio.wait_for(sink.retried.wait(), 5)  # it retries, it does not give up
        assert sink.got == []
        sink.up.set()
        box.poke()
        await asyncio.wait_for(box.drained(), 5)
        assert sink.got == [0, 1, 2, 3, 4]
        msgs = [r.getMessage() for r in caplog.records]
        assert sum("cannot publish" in m for m in msgs) == 1
        assert sum("works again" in m for m in msgs) == 1
    finally:
        task.cancel()


async def test_bounded_drops_oldest() -> None:
    sink = FlakySink()
    box: Outbox[int] = Outbox(sink.send, limit=3)
    for i in range(10):
        box.put(i)
    assert len(box) == 3 and box.dropped == 7
    sink.up.set()
    task = asyncio.create_task(box.run())
    try:
        await asyncio.wait_for(box.drained(), 5)
        assert sink.got == [7, 8, 9]
    finally:
        task.cancel()
