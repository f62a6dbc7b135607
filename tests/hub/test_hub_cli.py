"""The ``reflex-hub`` command: its first line, serving, clean signal shutdown, help, errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from reflex_hub import cli
from reflex_hub.server import HubStartError

from .support import WAIT

LINE = re.compile(r"reflex-hub listening on http://(?P<host>[^:]+):(?P<port>\d+)\n")
#: Interpreter start-up plus imports can be slow on a busy machine.
STARTUP_SECONDS = 20.0


def _command() -> list[str]:
    script = Path(sys.executable).parent / "reflex-hub"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "reflex_hub.cli"]


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *_command(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_SECONDS):
        first = (await process.stdout.readline()).decode()
    return process, first


async def _stop_within(process: asyncio.subprocess.Process, signum: int, seconds: float) -> float:
    started = time.monotonic()
    process.send_signal(signum)
    async with asyncio.timeout(seconds + 3):
        await process.wait()
    return time.monotonic() - started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serves_and_stops_on_signal(signum: int, tmp_path: Path) -> None:
    process, first = await _start("--port", "0", "--data", str(tmp_path / "data"))
    try:
        match = LINE.fullmatch(first)
        assert match, first
        assert match["host"] == "127.0.0.1"
        url = f"http://127.0.0.1:{match['port']}"
        timeout = aiohttp.ClientTimeout(total=WAIT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{url}/time/0") as response:
                assert response.status == 200
                [timetoken] = json.loads(await response.read())
                assert len(str(timetoken)) == 17
            # A held long-poll must not delay shutdown.
            async with session.get(f"{url}/v2/subscribe/s/ch/0?tt=0&uuid=u") as response:
                cursor = json.loads(await response.read())["t"]["t"]
            poll = asyncio.create_task(session.get(f"{url}/v2/subscribe/s/ch/0?tt={cursor}&uuid=u"))
            # The hub's stats endpoint waits until the poll is held (no sleeping here).
            async with session.get(f"{url}/_hub/stats?min_long_polls=1&within=5") as response:
                stats = json.loads(await response.read())
            assert stats["long_polls"] == 1
            assert stats["requests"] == {"time": 1, "subscribe": 2}
            elapsed = await _stop_within(process, signum, 2.0)
            answered = await poll
            assert answered.status == 200
            answered.release()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert elapsed < 2.0
    assert (tmp_path / "data" / "hub.sqlite3").exists()


async def test_non_loopback_host_warns(tmp_path: Path) -> None:
    process, first = await _start("--host", "0.0.0.0", "--port", "0", "--memory")
    try:
        assert LINE.fullmatch(first), first
        assert process.stderr is not None
        async with asyncio.timeout(WAIT):
            warning = (await process.stderr.readline()).decode()
        assert "warning" in warning and "no access control" in warning
        await _stop_within(process, signal.SIGTERM, 2.0)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0


def test_help_describes_a_local_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "development, demo and test backend" in text
    assert "no access control" in text
    for option in ("--host", "--port", "--data", "--memory", "--pub-key", "--sub-key"):
        assert option in text


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--data", "x", "--memory"])
    assert exit_info.value.code == 2
    assert cli.main(["--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_start_failure_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise HubStartError("cannot listen on 127.0.0.1:8787: Address already in use")

    monkeypatch.setattr(cli, "start_hub", refuse)
    assert cli.main(["--memory"]) == 1
    err = capsys.readouterr().err
    assert "Address already in use" in err and "Traceback" not in err
