"""A whole fleet for the end-to-end journeys: one hub, three real agents, real dashboards.

The hub is `reflex_tui.demo.EmbeddedHub` (its own thread and event loop), so it outlives
each test's event loop and one fleet serves every journey of the module. The agents are
real `reflex-agent join --name a|b|c` subprocesses, each with its own scripts dir (a copy of
the bundled checks), state dir, log file and config trusting this module's operator key;
the dashboards are the real app from `make_app`, driven by Pilot, signing with that key.

Every wait is a bounded condition wait; nothing sleeps to let time pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from reflex_core.config import Config
from reflex_core.paths import bundled_scripts_dir
from reflex_core.signing import load_or_create_key, public_key_text
from reflex_tui.app import ReflexApp
from reflex_tui.demo import EmbeddedHub
from tests.agent.agent_harness import isolated_env
from tests.tui import support
from tests.tui.support import card as card
from tests.tui.support import card_text as card_text
from tests.tui.support import select as select

AGENT_BIN = Path(sys.executable).with_name("reflex-agent")
BUNDLED_TESTS = ("cpu", "disk", "load", "memory", "processes", "swap")
INTERVAL = 2
"""The agents' starting interval (journey 4 sets 1 s for all)."""
PRESENCE_TIMEOUT = 20
"""The config's minimum: a SIGKILLed agent is reported offline ~20 s after its last poll."""
WAIT = 20.0
SIZE = (160, 60)

EDIT_SCRIPT = "e2e_edit.sh"


def value_script(label: str, value: int) -> str:
    return f'#!/bin/sh\necho "{label} OK - value {value} | value={value}"\n'


def agent_env(home: Path) -> dict[str, str]:
    """No REFLEX_* from the developer's shell, no real user dirs."""
    return isolated_env(home)


@dataclass
class AgentProc:
    name: str
    root: Path
    origin: str
    trusted: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def scripts(self) -> Path:
        return self.root / "scripts"

    @property
    def config_file(self) -> Path:
        return self.root / "config.ini"

    def prepare(self) -> None:
        shutil.copytree(bundled_scripts_dir(), self.scripts)
        (self.root / "state").mkdir()
        values = {
            "origin": self.origin,
            "scripts": str(self.scripts),
            "state_dir": str(self.root / "state"),
            "interval": str(INTERVAL),
            "presence_timeout": str(PRESENCE_TIMEOUT),
            "trusted_keys": self.trusted,
        }
        self.config_file.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))

    def command(self, *args: str) -> list[str]:
        return [str(AGENT_BIN), *args, "--name", self.name, "--config", str(self.config_file)]

    def start(self) -> None:
        log = open(self.root / "agent.log", "ab")  # noqa: SIM115 - the child holds it
        with log:
            self.proc = subprocess.Popen(
                self.command("join", "--log-level", "debug"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=agent_env(self.root / "home"),
                cwd=self.root,
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout)

    def run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=agent_env(self.root / "home"),
            cwd=self.root,
            check=False,
        )

    def log(self) -> str:
        path = self.root / "agent.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@dataclass
class FleetEnv:
    root: Path
    hub: EmbeddedHub
    key_path: Path
    public_key: str
    agents: dict[str, AgentProc] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    """What one journey hands the next (e.g. values seen before a dashboard restart)."""

    @classmethod
    def start(cls, root: Path) -> FleetEnv:
        key_path = root / "operator.key"
        public = public_key_text(load_or_create_key(key_path).public_key())
        hub = EmbeddedHub("127.0.0.1", 0, root / "hub").start()  # 0: a free port
        env = cls(root, hub, key_path, public)
        (root / "dashboard-scripts").mkdir()
        for name in ("a", "b", "c"):
            agent = AgentProc(name, root / name, hub.origin, public)
            agent.root.mkdir()
            agent.prepare()
            env.agents[name] = agent
        (env.agents["a"].scripts / EDIT_SCRIPT).write_text(value_script("EDIT", 1))
        os.chmod(env.agents["a"].scripts / EDIT_SCRIPT, 0o755)
        for agent in env.agents.values():
            agent.start()
        return env

    def dashboard_config(self) -> Config:
        return Config(
            origin=self.hub.origin,
            scripts=self.root / "dashboard-scripts",
            interval=INTERVAL,
            presence_timeout=PRESENCE_TIMEOUT,
            signing_key=self.key_path,
            local=True,
        )

    def close(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.hub.stop()

    def logs(self) -> str:
        return "\n".join(f"--- agent {a.name}\n{a.log()}" for a in self.agents.values())


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], *, within: float = WAIT, what: str = ""
) -> None:
    """`tests.tui.support.wait_for` with the longer default a fleet of real agents needs."""
    await support.wait_for(pilot, predicate, within=within, what=what)


async def connected(pilot: Pilot[Any], app: ReflexApp) -> None:
    await support.connected(pilot, app, within=WAIT)
