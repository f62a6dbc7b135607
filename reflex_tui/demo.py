"""Zero-config first run (`reflex-tui --demo`) and the embedded local hub.

`--demo` must work with no config, no keys and no network, and must leave nothing behind:
everything it creates lives in one temporary directory (hub data, a copy of the bundled
scripts, a throwaway operator key, the agent's config, state and log), and `Demo.close()`
stops the agent subprocess (SIGTERM, then SIGKILL on a deadline), stops the hub and removes
that directory, whatever way the dashboard ended.

The hub runs in a thread with its own event loop rather than in the dashboard's: a slow
hub request never delays a key press, and the hub's lifetime is simply "around
`app.run()`". The agent is a real `reflex-agent join` subprocess (the dashboard never
imports the agent); its config trusts the demo key, so the dashboard's signed uploads run.

Plain `reflex-tui` in local mode uses the same `EmbeddedHub`, on the configured address
with the persistent hub data dir, when nothing answers there (`hub_answers`), so that
`reflex-agent join` in another terminal just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from reflex_core.config import Config
from reflex_core.paths import bundled_scripts_dir
from reflex_core.signing import load_or_create_key, public_key_text

DEMO_INTERVAL = 5
"""Seconds between the demo agent's rounds: the card fills and moves within seconds."""
PROBE_TIMEOUT = 0.5
"""How long `reflex-tui` waits for an existing local hub before starting its own."""
AGENT_STOP_TIMEOUT = 5.0
"""SIGTERM grace for the demo agent (it leaves presence within ~2 s) before SIGKILL."""
HUB_START_TIMEOUT = 15.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def hub_answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a PubNub-compatible server answers `GET /time/0` at `url` (http://host:port)."""
    try:
        with urllib.request.urlopen(f"{url}/time/0", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def split_origin(origin: str) -> tuple[str, int]:
    """`host:port` -> (host, port); the port defaults to 80 like an http URL would."""
    host, sep, port = origin.rpartition(":")
    if not sep or not port.isdigit():
        return origin, 80
    return host.strip("[]"), int(port)


def is_loopback_origin(origin: str) -> bool:
    host, _port = split_origin(origin)
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedHub:
    """A `reflex_hub` server on its own event loop in a daemon thread."""

    def __init__(self, host: str, port: int, data_dir: Path) -> None:
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: object | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def origin(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedHub:
        """Start and wait until the hub accepts connections; raises what the hub raised
        (port taken, data dir locked by another hub)."""
        self._thread = threading.Thread(target=self._run, name="reflex-hub", daemon=True)
        self._thread.start()
        if not self._ready.wait(HUB_START_TIMEOUT):
            raise RuntimeError(f"the embedded hub did not start within {HUB_START_TIMEOUT} s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        from reflex_hub import start_hub  # only the dashboard's hub modes need the server

        self._stop = asyncio.Event()
        try:
            handle = await start_hub(self.host, self.port, data_dir=self.data_dir)
            self.port = int(handle.port)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._handle = handle
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await handle.stop()

    def stop(self) -> None:
        """Stop the server and its thread (idempotent; bounded)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(HUB_START_TIMEOUT)
            self._thread = None


def maybe_embed_local_hub(config: Config) -> EmbeddedHub | None:
    """In local mode, start a hub at the configured loopback address when none answers.

    Returns the running hub (the caller stops it) or None: PubNub mode, a non-loopback
    origin, or a hub already answering (then the dashboard simply uses it).
    """
    from reflex_core.paths import hub_data_dir

    if not config.local or not config.origin or not is_loopback_origin(config.origin):
        return None
    if config.hub_url is None or hub_answers(config.hub_url):
        return None
    host, port = split_origin(config.origin)
    return EmbeddedHub(host, port, hub_data_dir()).start()


def agent_command() -> list[str]:
    """`reflex-agent` next to this interpreter (the venv's console script), else the same
    entry point through the interpreter, so the demo works however it was installed."""
    script = Path(sys.executable).with_name("reflex-agent")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from reflex_agent.cli import main; sys.exit(main())"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the agent gets SIGTERM if the dashboard dies without cleaning up (SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_process(proc: subprocess.Popen[bytes], timeout: float = AGENT_STOP_TIMEOUT) -> None:
    """SIGTERM (the agent leaves presence), then SIGKILL if it is still there at the deadline."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout)


@dataclass
class Demo:
    """Hub + one agent for this machine + the dashboard's config, all in one temp dir."""

    interval: int = DEMO_INTERVAL
    root: Path | None = None
    hub: EmbeddedHub | None = None
    agent: subprocess.Popen[bytes] | None = None
    config: Config | None = None
    public_key: str = ""
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Config:
        """Set everything up and return the dashboard's config; on any failure, undo what
        was done before re-raising."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Config:
        bundled = bundled_scripts_dir()
        if not bundled.is_dir():
            raise RuntimeError(
                f"the bundled check scripts are not at {bundled} (the demo runs from a clone "
                "installed with `pip install -e .`)"
            )
        root = self.root = Path(tempfile.mkdtemp(prefix="reflex-demo-"))
        key_path = root / "operator.key"
        key = load_or_create_key(key_path)
        self.public_key = public_key_text(key.public_key())
        dashboard_scripts = root / "scripts"
        agent_scripts = root / "agent" / "scripts"
        for target in (dashboard_scripts, agent_scripts):
            shutil.copytree(bundled, target, symlinks=False)
        state = root / "agent" / "state"
        state.mkdir(parents=True)
        self.hub = EmbeddedHub("127.0.0.1", 0, root / "hub").start()  # 0: a free port
        origin = self.hub.origin
        agent_config = root / "agent" / "config.ini"
        lines = {
            "origin": origin,
            "scripts": str(agent_scripts),
            "state_dir": str(state),
            "interval": str(self.interval),
            "trusted_keys": self.public_key,
        }
        agent_config.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()))
        self.agent = self._start_agent(agent_config, root)
        self.config = Config(
            origin=origin,
            scripts=dashboard_scripts,
            interval=self.interval,
            signing_key=key_path,
            local=True,
        )
        return self.config

    def _start_agent(self, config_file: Path, root: Path) -> subprocess.Popen[bytes]:
        # The user's REFLEX_* variables and user dirs must not leak into the demo agent.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFLEX_")}
        home = root / "agent" / "home"
        env.update(
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CACHE_HOME=str(home / "cache"),
            PYTHONUNBUFFERED="1",
        )
        log = open(root / "agent" / "agent.log", "wb")  # closed in close()
        self._log = log
        return subprocess.Popen(
            [*agent_command(), "join", "--config", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,  # Ctrl-C in the terminal reaches the dashboard only
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def close(self) -> None:
        """Stop the agent, then the hub, then remove the temp dir. Idempotent."""
        if self.agent is not None:
            stop_process(self.agent)
            self.agent = None
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        if self.hub is not None:
            self.hub.stop()
            self.hub = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Config:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
