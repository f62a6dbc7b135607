"""The real `reflex-tui --demo` console script in a pseudo-terminal (stdlib `pty`).

What a newcomer does: run it, see this host's card, press q. It must exit 0 and leave no
process (agent, anything) and no temp dir behind.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.timeout(90)

TUI_BIN = Path(sys.executable).with_name("reflex-tui")
ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07]*\x07"
)


def read_until(fd: int, buffer: bytearray, pattern: str, within: float) -> bool:
    """Read the terminal until `pattern` shows in its text (escapes removed); bounded."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not chunk:
                return False
            buffer.extend(chunk)
            if pattern in ANSI.sub(b"", bytes(buffer)).decode("utf-8", "replace"):
                return True
    return False


def drain(fd: int, buffer: bytearray) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            return
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        buffer.extend(chunk)


def test_demo_shows_this_host_and_q_leaves_nothing(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLEX_")}
    env.update(
        TERM="xterm-256color",
        TMPDIR=str(temp),  # the demo's temp dir lands here, where the test can look
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".local/state"),
        COLUMNS="120",
        LINES="36",
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    proc = subprocess.Popen(
        [str(TUI_BIN), "--demo"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()
    children: list[psutil.Process] = []
    try:
        host = socket.gethostname()
        assert read_until(master, screen, "every 5s", 45.0), ANSI.sub(b"", bytes(screen))[-2000:]
        assert host in ANSI.sub(b"", bytes(screen)).decode("utf-8", "replace")
        assert read_until(master, screen, "processes", 30.0), "the card did not fill"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("reflex-agent" in " ".join(c.cmdline()) for c in children)
        assert [p.name for p in temp.iterdir() if p.name.startswith("reflex-demo-")]
        os.write(master, b"q")
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            drain(master, screen)
        assert proc.wait(timeout=1) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    assert list(temp.iterdir()) == [], "the demo's temp dir was not removed"
