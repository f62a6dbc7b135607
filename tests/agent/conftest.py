"""Shared helpers for the agent's core tests (runner, discovery, bundled scripts)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO / "scripts"

WriteScript = Callable[..., Path]


@pytest.fixture
def write_script(tmp_path: Path) -> WriteScript:
    """Write a script file into a fresh directory: ``write_script(name, body, mode=0o755)``."""
    directory = tmp_path / "scripts"
    directory.mkdir()

    def write(name: str, body: str | bytes, mode: int = 0o755) -> Path:
        path = directory / name
        if isinstance(body, str):
            path.write_text(body, encoding="utf-8")
        else:
            path.write_bytes(body)
        os.chmod(path, mode)
        return path

    return write


class ProcessProbe:
    """Helpers about processes a test started; a fixture because tests/agent is no package."""

    @staticmethod
    def is_running(pid: int) -> bool:
        return process_is_running(pid)

    @staticmethod
    def wait_not_running(pid: int, within: float = 3.0) -> bool:
        return wait_not_running(pid, within)

    @staticmethod
    def kill(pid: int) -> None:
        kill_if_running(pid)


@pytest.fixture
def procs() -> ProcessProbe:
    return ProcessProbe()


def process_is_running(pid: int) -> bool:
    """True while ``pid`` is a live process; a zombie has finished running.

    Orphans are reparented to PID 1, which reaps them in its own time (some
    container inits never do), so "gone" means "no such process or a zombie".
    """
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_not_running(pid: int, within: float = 3.0) -> bool:
    """Wait (bounded) until ``pid`` stops running; for processes killed asynchronously.

    This polls a condition with a deadline, it does not sleep to let time pass.
    """
    deadline = time.monotonic() + within
    while process_is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def kill_if_running(pid: int) -> None:
    """Test cleanup for a process a test started on purpose (by its pid only)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
