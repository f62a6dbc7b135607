"""Helpers for the dashboard tests: simulated agents, a command recorder, bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from textual.pilot import Pilot

from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_core.events import Message
from reflex_core.protocol import (
    Command,
    Perf,
    ProtocolError,
    Rejection,
    Result,
    ResultsMessage,
    SetIgnore,
    SetInterval,
    StateMessage,
    Status,
    device_channel,
    device_id,
    encode_custom,
    parse_command,
)
from reflex_tui.app import ReflexApp
from reflex_tui.widgets.device_card import DeviceCard
from reflex_tui.widgets.status_bar import StatusBar

WAIT = 10.0


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], *, within: float = WAIT, what: str = ""
) -> None:
    """Let the app run until `predicate()` is true; fail after `within` seconds.

    Polls between short pauses of the app (a condition wait, not a sleep): every
    iteration lets messages, timers and network callbacks run.
    """
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or predicate}")
        await pilot.pause(0.02)


def card(app: ReflexApp, ident: str) -> DeviceCard | None:
    return app.dashboard.grid.cards.get(ident)


def card_text(app: ReflexApp, ident: str) -> str:
    found = card(app, ident)
    return "" if found is None else found.plain


def header_text(app: ReflexApp) -> str:
    return app.dashboard.query_one(StatusBar).plain


def pct(
    test: str,
    value: float,
    *,
    warn: str | None = "80",
    crit: str | None = "90",
    output: str | None = None,
) -> Result:
    status = Status.OK
    if crit is not None and value >= float(crit):
        status = Status.CRITICAL
    elif warn is not None and value >= float(warn):
        status = Status.WARNING
    return Result(
        test=test,
        status=status,
        output=output if output is not None else f"{test.upper()} {status.name} - {value}%",
        value=value,
        unit="%",
        perf=(Perf(label=test, value=value, uom="%", warn=warn, crit=crit),),
        ts=time.time(),
    )


class SimAgent:
    """A fake agent: registers, stays present on ignore_chan, publishes rounds, and (if
    `confirm`) answers set_ignore / set_interval / refresh with a `state` message."""

    def __init__(self, bus: Bus, config: Config, name: str, *, confirm: bool = True) -> None:
        self.bus = bus
        self.config = config
        self.name = name
        self.id = device_id(name)
        self.channel = device_channel(self.id)
        self.confirm = confirm
        self.seq = 0
        self.interval = 10
        self.ignored: tuple[str, ...] = ()
        self.rejected: tuple[Rejection, ...] = ()
        self.commands: list[Command] = []
        self._received = asyncio.Event()

    async def join(self, *, present: bool = True) -> SimAgent:
        await self.bus.set_uuid_metadata(
            self.id, name=self.name, custom=encode_custom(self.ignored, self.interval)
        )
        await self.bus.set_channel_members(self.config.channel, [self.id])
        if present:
            await self.go_online()
        return self

    async def go_online(self) -> None:
        self.bus.add_listener(on_message=self._on_command)
        await self.bus.subscribe([self.config.ignore_chan])
        async with asyncio.timeout(WAIT):
            await self.bus.wait_connected()

    async def go_offline(self) -> None:
        await self.bus.unsubscribe([self.config.ignore_chan])

    async def publish_round(self, results: Sequence[Result], *, ts: float | None = None) -> int:
        self.seq += 1
        message = ResultsMessage(
            host=self.name,
            id=self.id,
            seq=self.seq,
            ts=ts or time.time(),
            interval=self.interval,
            results=tuple(results),
        )
        return await self.bus.publish(self.channel, message.to_wire())

    async def publish_state(self) -> int:
        message = StateMessage(
            host=self.name,
            id=self.id,
            ts=time.time(),
            interval=self.interval,
            ignored=self.ignored,
            rejected=self.rejected,
        )
        return await self.bus.publish(self.channel, message.to_wire())

    def _on_command(self, event: Message) -> None:
        if event.channel != self.config.ignore_chan:
            return
        try:
            command = parse_command(event.payload)
        except ProtocolError:
            return
        if not command.applies_to(self.id):
            return
        self.commands.append(command)
        self._received.set()
        if not self.confirm:
            return
        if isinstance(command, SetIgnore):
            self.ignored = command.ignore
        elif isinstance(command, SetInterval):
            self.interval = command.interval
        else:
            return
        asyncio.ensure_future(self.publish_state())


class CommandLog:
    """A second subscriber on ignore_chan: what the dashboard published."""

    def __init__(self, bus: Bus, config: Config) -> None:
        self.bus = bus
        self.config = config
        self.commands: list[Command] = []
        self.raw: list[Message] = []

    async def start(self) -> None:
        self.bus.add_listener(on_message=self._on_message)
        await self.bus.subscribe([self.config.ignore_chan])
        async with asyncio.timeout(WAIT):
            await self.bus.wait_connected()

    def _on_message(self, event: Message) -> None:
        if event.channel != self.config.ignore_chan:
            return
        self.raw.append(event)
        self.commands.append(parse_command(event.payload))

    def of(self, kind: type) -> list[Any]:
        return [c for c in self.commands if isinstance(c, kind)]


class ManualClock:
    """Real time plus an offset a test can move forward (to make devices stale)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


async def connected(pilot: Pilot[Any], app: ReflexApp, *, within: float = WAIT) -> None:
    """Wait until the dashboard is subscribed and its start-up backfill is done."""
    controller = app.controller
    assert controller is not None
    await wait_for(
        pilot,
        lambda: (
            controller.backfilled
            and app.fleet.connection.state.value in ("connected", "reconnected")
        ),
        within=within,
        what="dashboard connected and backfilled",
    )


async def ready(pilot: Pilot[Any], app: ReflexApp) -> None:
    """`connected`, and every member's card is on screen with nothing left to render."""
    await connected(pilot, app)
    await wait_for(
        pilot,
        lambda: (
            not app.fleet.has_changes
            and list(app.dashboard.grid.cards) == [d.id for d in app.fleet.members()]
        ),
        what="cards on screen",
    )


async def select(pilot: Pilot[Any], device_id: str, test: str | None = None) -> None:
    """Put the cursor on a device (and test) the way a click would."""
    app = pilot.app
    assert isinstance(app, ReflexApp)
    screen = app.dashboard
    await wait_for(pilot, lambda: device_id in screen.grid.cards, what=f"card {device_id}")
    screen.select(screen.grid.cards[device_id], test)
    await pilot.pause()
    assert screen.selected_id == device_id
    if test is not None:
        assert screen.selected_test == test
