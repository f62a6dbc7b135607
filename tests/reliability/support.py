"""Helpers for the reliability tests: a hub and agents as real subprocesses, a recorder of
what a client received, and bounded waits.

The hub runs as `reflex-hub --port P --data DIR` (so it can be SIGKILLed like a crashed
server) and agents as `reflex-agent join` (so they can be SIGKILLed / SIGTERMed like real
daemons); the dashboard runs in-process under Pilot. Everything is driven with asyncio
(never a blocking wait) because the dashboard shares the test's event loop. Waits are on
conditions with deadlines; nothing sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psutil

from reflex_core.events import ConnectionEvent, Message, PresenceEvent
from reflex_core.protocol import (
    ProtocolError,
    ResultsMessage,
    StateMessage,
    device_id_from_channel,
    parse_device_message,
)
from tests.agent.agent_harness import free_port, subprocess_env

BIN = Path(sys.executable).parent
HUB_BIN = BIN / "reflex-hub"
AGENT_BIN = BIN / "reflex-agent"

#: Shortest presence timeout the config accepts (PubNub's floor); the hub honours it.
PRESENCE_TIMEOUT = 20
#: Bound for a subprocess to start and print its first line / first result.
START_WAIT = 20.0


async def wait_until(
    predicate: Callable[[], object], *, within: float, what: str, step: float = 0.05
) -> float:
    """Poll `predicate` (a condition wait with a deadline, not a sleep); returns the seconds
    it took. Fails with `what` after `within` seconds."""
    start = time.monotonic()
    deadline = start + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(step)
    return time.monotonic() - start


class HubProcess:
    """`reflex-hub` in a subprocess on a fixed port and data dir: SIGKILL and restart it."""

    def __init__(self, data_dir: Path, log_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.port = port or free_port()
        self.origin = f"127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> float:
        """Start and wait for its "listening" line; returns time.monotonic() of that line."""
        self.starts += 1
        with self._log_file() as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(HUB_BIN),
                "--port",
                str(self.port),
                "--data",
                str(self.data_dir),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_WAIT):
            line = await self.proc.stdout.readline()
        assert b"listening on" in line, line
        return time.monotonic()

    def _log_file(self) -> BinaryIO:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"hub-{self.starts}.log", "wb")

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a crash or the OOM killer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def write_agent_config(path: Path, values: dict[str, object]) -> Path:
    """The seed's header-less `key = value` format."""
    path.write_text("".join(f"{k} = {v}\n" for k, v in values.items()), encoding="utf-8")
    return path


class AgentProcess:
    """`reflex-agent join` in a subprocess, with its own scripts/state dirs and HOME.

    Runs at log level debug so the test can wait for "round N" lines (the agent's own
    account of its schedule, which also works while the hub is down). stderr is read
    continuously so the pipe never fills.
    """

    def __init__(
        self,
        base: Path,
        name: str,
        origin: str,
        *,
        interval: int = 1,
        timeout: float = 5.0,
        scripts: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        self.name = name
        self.id = name  # names used here are already valid device ids
        self.dir = base / name
        self.scripts = self.dir / "scripts"
        self.state = self.dir / "state"
        self.scripts.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        for file_name, body in (scripts or {"ok.sh": "echo 'OK | v=1'\n"}).items():
            script = self.scripts / file_name
            script.write_text(body, encoding="utf-8")
            os.chmod(script, 0o755)
        values: dict[str, object] = {
            "origin": origin,
            "scripts": self.scripts,
            "state_dir": self.state,
            "interval": interval,
            "timeout": timeout,
            "presence_timeout": PRESENCE_TIMEOUT,
            "name": name,
        }
        values.update(extra)
        self.config_path = write_agent_config(self.dir / "config.ini", values)
        self.env = subprocess_env(self.dir)
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.stamps: list[float] = []  # time.monotonic() each line arrived
        self._reader: asyncio.Task[None] | None = None
        self._seen: set[int] = set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            str(AGENT_BIN),
            "join",
            "--config",
            str(self.config_path),
            "--log-level",
            "debug",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.dir,
        )
        self._reader = asyncio.create_task(self._read(self.proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            self.stamps.append(time.monotonic())
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def count(self, text: str, since: int = 0) -> int:
        return sum(text in line for line in self.lines[since:])

    def first(self, text: str, since: int = 0) -> float | None:
        """Arrival time of the first line from index `since` on that contains `text`."""
        for index in range(since, len(self.lines)):
            if text in self.lines[index]:
                return self.stamps[index]
        return None

    def descendants(self) -> list[psutil.Process]:
        """Every process below the agent (checks and whatever they started)."""
        with contextlib.suppress(psutil.Error):
            found = psutil.Process(self.pid).children(recursive=True)
            self._seen.update(p.pid for p in found)
            return found
        return []

    async def signal_and_wait(self, signum: int, within: float = 10.0) -> int:
        assert self.proc is not None
        self.descendants()
        self.proc.send_signal(signum)
        async with asyncio.timeout(within):
            code = await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._reader
        return code

    async def close(self) -> None:
        """Kill the agent if still running and any process of its it left behind."""
        if self.proc is not None and self.proc.returncode is None:
            self.descendants()
            self.proc.kill()
            await self.proc.wait()
        for pid in self._seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@dataclass
class Received:
    """One device message as a client received it."""

    device: str
    message: ResultsMessage | StateMessage
    timetoken: int
    at: float  # time.monotonic() of arrival


@dataclass
class Recorder:
    """A listener (added to the dashboard's own bus) recording what that client received:
    device messages per device, presence events, connection changes."""

    by_device: dict[str, list[Received]] = field(default_factory=dict)
    presence: list[tuple[float, PresenceEvent]] = field(default_factory=list)
    connection: list[tuple[float, ConnectionEvent]] = field(default_factory=list)

    def on_message(self, message: Message) -> None:
        device = device_id_from_channel(message.channel)
        if device is None or message.publisher != device:
            return
        try:
            parsed = parse_device_message(message.payload)
        except ProtocolError as exc:
            raise AssertionError(f"agent published an invalid message: {exc}") from exc
        self.by_device.setdefault(device, []).append(
            Received(device, parsed, message.timetoken, time.monotonic())
        )

    def on_presence(self, event: PresenceEvent) -> None:
        self.presence.append((time.monotonic(), event))

    def on_connection(self, event: ConnectionEvent) -> None:
        self.connection.append((time.monotonic(), event))

    def results(self, device: str) -> list[Received]:
        return [r for r in self.by_device.get(device, []) if isinstance(r.message, ResultsMessage)]

    def seqs(self, device: str) -> list[int]:
        return [r.message.seq for r in self.results(device)]  # type: ignore[union-attr]

    def result_count(self, devices: Iterable[str]) -> int:
        return sum(len(self.results(d)) for d in devices)


def assert_in_order_without_loss(seqs: list[int], device: str) -> None:
    """Per device: sequence numbers strictly increasing in arrival order (in order, no
    duplicates) and contiguous (nothing lost)."""
    assert seqs, f"{device}: no results at all"
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)), (
        f"{device}: out of order or duplicated: {seqs}"
    )
    missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
    assert not missing, f"{device}: seq gaps {missing} in {seqs}"
