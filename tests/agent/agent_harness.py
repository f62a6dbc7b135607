"""Helpers for the agent's daemon and CLI tests: configs, an observer on the hub, agents.

Not a conftest (tests/agent is no package and its conftest belongs to the runner tests);
daemon/CLI test modules import it by name, which pytest's rootdir-relative sys.path allows.
Everything waits on messages or processes with a bounded timeout; nothing sleeps to let time
pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reflex_agent.daemon import Agent
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.events import Message, PresenceEvent, SentFile
from reflex_core.protocol import (
    ProtocolError,
    ResultsMessage,
    StateMessage,
    device_channel,
    parse_device_message,
)
from reflex_core.signing import public_key_text, send_signed, sign_upload
from reflex_hub import HubHandle, start_hub

WAIT = 15.0
REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "scripts"
AGENT_BIN = Path(sys.executable).with_name("reflex-agent")

FAST_BUS = {"reconnect_interval": 0.2, "request_timeout": 3, "connect_timeout": 2}

#: The operator key test dashboards sign uploads with; agents trust it via
#: ``make_config(..., trusted_keys=(OPERATOR,))``.
OPERATOR_KEY = Ed25519PrivateKey.generate()
OPERATOR = public_key_text(OPERATOR_KEY.public_key())


async def upload(
    bus: Bus,
    channel: str,
    name: str,
    data: bytes,
    *,
    key: Ed25519PrivateKey = OPERATOR_KEY,
    version: int | None = None,
) -> SentFile:
    """Send a script the way the dashboard does: signed, sidecar first (`send_signed`)."""
    return await send_signed(bus, channel, sign_upload(key, name, data, version=version))


def make_config(tmp_path: Path, origin: str, **values: Any) -> Config:
    """A test config: its own scripts and state dirs under tmp_path, short interval."""
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    defaults: dict[str, Any] = {
        "origin": origin,
        "scripts": scripts,
        "state_dir": state,
        "interval": 2,
        "timeout": 5.0,
        "name": "Web1.Test",
    }
    defaults.update(values)
    return Config(**defaults)


def write_script(directory: Path, name: str, body: str | bytes, mode: int = 0o644) -> Path:
    """Write a script atomically (a rename), as editors and our sync do."""
    path = directory / name
    tmp = directory / f".{name}.tmp-test"
    if isinstance(body, str):
        tmp.write_text(body, encoding="utf-8")
    else:
        tmp.write_bytes(body)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def agent_bus(config: Config, user_id: str | None = None, **overrides: Any) -> Bus:
    """A Bus with the agent's settings (or another user id), reconnecting fast."""
    return Bus(
        BusSettings.from_config(
            config, user_id=user_id or config.device_id, **{**FAST_BUS, **overrides}
        )
    )


@dataclass
class Observer:
    """A dashboard-like client: reads `device.<id>`, presence on the command channel, and
    publishes commands.

    `next(match)` returns the oldest message not returned yet that matches, waiting (bounded)
    for it if needed; messages that did not match stay available to later calls, so the
    order in which a test asks does not have to be the order in which messages arrive.
    """

    bus: Bus
    device: str
    command_channel: str = "ignore"
    messages: list[ResultsMessage | StateMessage] = field(default_factory=list)
    presence: list[PresenceEvent] = field(default_factory=list)
    _pending: list[ResultsMessage | StateMessage] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _presence_pending: list[PresenceEvent] = field(default_factory=list)

    def _on_message(self, message: Message) -> None:
        if message.channel != device_channel(self.device):
            return
        try:
            parsed = parse_device_message(message.payload)
        except ProtocolError as exc:  # the agent must never publish anything unparseable
            raise AssertionError(f"agent published an invalid message: {exc}") from exc
        self.messages.append(parsed)
        self._pending.append(parsed)
        self._arrived.set()

    def _on_presence(self, event: PresenceEvent) -> None:
        self.presence.append(event)
        self._presence_pending.append(event)
        self._arrived.set()

    async def _take(self, pending: list[Any], match: Callable[[Any], bool], within: float) -> Any:
        async with asyncio.timeout(within):
            while True:
                for index, item in enumerate(pending):
                    if match(item):
                        return pending.pop(index)
                self._arrived.clear()
                await self._arrived.wait()

    async def next(
        self,
        match: Callable[[ResultsMessage | StateMessage], bool] = lambda m: True,
        within: float = WAIT,
    ) -> ResultsMessage | StateMessage:
        result: ResultsMessage | StateMessage = await self._take(self._pending, match, within)
        return result

    def skip_all(self) -> None:
        """Forget every message received so far (later waits see only newer ones)."""
        self._pending.clear()
        self._presence_pending.clear()

    async def state(
        self, match: Callable[[StateMessage], bool] = lambda m: True, within: float = WAIT
    ) -> StateMessage:
        found = await self.next(lambda m: isinstance(m, StateMessage) and match(m), within)
        assert isinstance(found, StateMessage)
        return found

    async def results(
        self, match: Callable[[ResultsMessage], bool] = lambda m: True, within: float = WAIT
    ) -> ResultsMessage:
        found = await self.next(lambda m: isinstance(m, ResultsMessage) and match(m), within)
        assert isinstance(found, ResultsMessage)
        return found

    async def presence_event(
        self, match: Callable[[PresenceEvent], bool], within: float = WAIT
    ) -> PresenceEvent:
        event: PresenceEvent = await self._take(self._presence_pending, match, within)
        return event

    async def command(self, payload: dict[str, Any]) -> None:
        await self.bus.publish(self.command_channel, payload)


def has_test(name: str) -> Callable[[ResultsMessage], bool]:
    return lambda m: any(r.test == name for r in m.results)


def result_of(message: ResultsMessage, name: str) -> Any:
    for result in message.results:
        if result.test == name:
            return result
    raise AssertionError(f"no result for {name} in {message}")


@contextlib.asynccontextmanager
async def observing(
    origin: str, device: str, command_channel: str = "ignore"
) -> AsyncIterator[Observer]:
    bus = Bus(
        BusSettings(
            publish_key="pub-c-reflex-local",
            subscribe_key="sub-c-reflex-local",
            user_id="test-dashboard",
            origin=origin,
            ssl=False,
            presence_heartbeat=False,
            **FAST_BUS,
        )
    )
    await bus.start()
    observer = Observer(bus, device, command_channel)
    bus.add_listener(on_message=observer._on_message, on_presence=observer._on_presence)
    await bus.subscribe([device_channel(device)], presence_channels=[command_channel])
    async with asyncio.timeout(WAIT):
        await bus.wait_connected()
    try:
        yield observer
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """Run an in-process agent until the block ends (then cancel it like SIGTERM does)."""
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_queued(agent: Agent, count: int, within: float = WAIT) -> None:
    """Wait until the agent's outbox holds `count` unsent messages (the network is down)."""
    enough = asyncio.Event()
    put = agent.outbox.put

    def counting_put(item: Any) -> None:
        put(item)
        if len(agent.outbox) >= count:
            enough.set()

    agent.outbox.put = counting_put  # type: ignore[method-assign]
    try:
        if len(agent.outbox) < count:
            async with asyncio.timeout(within):
                await enough.wait()
    finally:
        agent.outbox.put = put  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RestartableHub:
    """A data-dir hub on a fixed port that a test can stop and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.origin = f"127.0.0.1:{self.port}"
        self.handle: HubHandle | None = None

    async def start(self) -> None:
        self.handle = await start_hub("127.0.0.1", self.port, data_dir=self.data_dir)

    async def stop(self) -> None:
        if self.handle is not None:
            await self.handle.stop()
            self.handle = None


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `reflex-agent` subprocess that cannot touch the real user dirs."""
    return isolated_env(tmp_path / "home", **extra)


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """No REFLEX_* from the developer's shell; HOME and every XDG dir under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLEX_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def write_config(path: Path, config: Config, **extra: str) -> Path:
    """Write the seed's header-less `key = value` format for a subprocess agent."""
    values = {
        "origin": config.origin,
        "scripts": str(config.scripts),
        "state_dir": str(config.state_dir),
        "interval": str(config.interval),
        "timeout": str(config.timeout),
        "name": config.name or "",
    }
    values.update(extra)
    path.write_text("".join(f"{k} = {v}\n" for k, v in values.items()), encoding="utf-8")
    return path
