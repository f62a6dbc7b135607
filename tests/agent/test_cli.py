"""The real `reflex-agent` program in subprocesses against an in-process hub.

Subprocesses are driven with asyncio (never a blocking wait) because the hub they talk to runs
on the test's own event loop. Each gets a private HOME/XDG_* so no real user dir is touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from reflex_core.config import Config
from reflex_core.events import PresenceAction
from reflex_core.protocol import Status
from reflex_hub import HubHandle

from .agent_harness import (
    AGENT_BIN,
    BUNDLED,
    agent_bus,
    free_port,
    has_test,
    make_config,
    observing,
    subprocess_env,
    write_config,
    write_script,
)

pytestmark = pytest.mark.timeout(60)

ME = "web1-test"
RUN_WAIT = 30.0


async def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, within: float = RUN_WAIT
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(AGENT_BIN),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or subprocess_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config_file(tmp_path: Path, config: Config, **extra: str) -> str:
    return str(write_config(tmp_path / "config.ini", config, **extra))


async def test_once_with_the_bundled_scripts(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin)
    for script in BUNDLED.glob("*.py"):
        shutil.copy(script, config.scripts)
    shutil.copy(BUNDLED / "README.md", config.scripts)
    async with observing(hub.origin, ME) as observer:
        code, _, err = await run_cli(
            tmp_path, "join", "--once", "--config", config_file(tmp_path, config)
        )
        message = await observer.results()
    assert code == 0, err
    assert "Traceback" not in err
    assert {r.test for r in message.results} == {
        "cpu",
        "disk",
        "load",
        "memory",
        "processes",
        "swap",
    }
    words = {"processes": "PROCS"}
    for result in message.results:
        # The status is the one the check's own text claims ("DISK OK - ...").
        assert result.status is not Status.UNKNOWN, result
        assert result.output.startswith(f"{words.get(result.test, result.test.upper())} ")
        assert result.output.split()[1] == result.status.value.upper()
        assert result.perf and result.value == result.perf[0].value
        assert result.unit == result.perf[0].uom
    assert [m for m in observer.messages if hasattr(m, "results")] == [message]  # just one


async def test_once_fails_loudly_without_a_network(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"127.0.0.1:{free_port()}")
    write_script(config.scripts, "ok.sh", "echo ok\n")
    code, _, err = await run_cli(
        tmp_path, "join", "--once", "--config", config_file(tmp_path, config)
    )
    assert code == 1
    assert "results were not published" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "file_text", "message"),
    [
        (["join"], "interval = ten\n", "config.ini:1: interval = 'ten': expected a whole number"),
        (["status"], "interval = 0\n", "expected a whole number"),
        (["join", "--once"], "ssl = maybe\n", "ssl = 'maybe': expected true or false"),
        (["join", "--log-level", "loud"], "", "--log-level 'loud': expected one of debug"),
        (["exit", "--config", "missing.ini"], None, "--config "),
    ],
)
async def test_config_errors_exit_2_without_a_traceback(
    tmp_path: Path, args: list[str], file_text: str | None, message: str
) -> None:
    if file_text is not None:
        (tmp_path / "config.ini").write_text(file_text)
    code, out, err = await run_cli(tmp_path, *args, within=15)
    assert code == 2
    assert message in err and "config error" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = await run_cli(tmp_path, "dance", within=15)
    assert code == 2 and "invalid choice" in err
    code, out, _ = await run_cli(tmp_path, "--help", within=15)
    assert code == 0 and "join" in out and "exit" in out and "status" in out


async def test_join_status_sigterm_exit(tmp_path: Path, hub: HubHandle, procs: Any) -> None:
    config = make_config(tmp_path, hub.origin, interval=2, timeout=30.0)
    write_script(config.scripts, "fast.sh", "echo fast\n")
    # A check that is still running (with a child of its own) when SIGTERM arrives.
    write_script(config.scripts, "slow.sh", "sleep 300 &\nsleep 300\n")
    path = config_file(tmp_path, config, ignore_list="nothing")
    env = subprocess_env(tmp_path)
    async with observing(hub.origin, ME) as observer:
        proc = await asyncio.create_subprocess_exec(
            str(AGENT_BIN), "join", "--config", path, stderr=asyncio.subprocess.PIPE, env=env
        )
        try:
            await observer.presence_event(
                lambda e: e.action == PresenceAction.JOIN and e.uuid == ME, within=RUN_WAIT
            )
            await observer.results(has_test("fast"), within=RUN_WAIT)

            code, out, err = await run_cli(tmp_path, "status", "--config", path, env=env)
            assert code == 0, err
            lines = dict(line.split(None, 1) for line in out.splitlines() if line[:1] != " ")
            assert lines["device"] == "Web1.Test (id web1-test)"
            assert lines["member"] == "yes (of availability_monitor)"
            assert lines["online"] == "yes (presence on ignore)"
            assert lines["ignore"] == "nothing (from App Context)"
            assert lines["interval"] == "2 s (from App Context)"
            assert "  fast  fast.sh  [local]" in out and "  slow  slow.sh  [local]" in out

            agent = psutil.Process(proc.pid)
            children = agent.children(recursive=True)
            assert any("sleep" in " ".join(c.cmdline()) for c in children)

            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                _, err_bytes = await proc.communicate()
            assert proc.returncode == 0
            await observer.presence_event(
                lambda e: e.action == PresenceAction.LEAVE and e.uuid == ME, within=5
            )
            assert all(procs.wait_not_running(c.pid, 3.0) for c in children)  # no orphans left
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    log = err_bytes.decode()
    assert "SIGTERM received: leaving" in log and "Traceback" not in log

    # `exit` removes the membership (the dashboard drops the card).
    code, out, err = await run_cli(tmp_path, "exit", "--config", path, env=env)
    assert code == 0, err
    assert f"removed {ME} from availability_monitor" in out
    reader = agent_bus(config, user_id="reader")
    await reader.start()
    try:
        members = await reader.get_channel_members("availability_monitor")
        online = await reader.here_now("ignore")
    finally:
        await reader.close()
    assert ME not in {m.uuid for m in members} and ME not in online
    code, out, _ = await run_cli(tmp_path, "status", "--config", path, env=env)
    assert "member      no (of availability_monitor)" in out


async def test_status_without_a_network_still_shows_local_facts(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"127.0.0.1:{free_port()}")
    write_script(config.scripts, "cpu.sh", "echo 1\n")
    code, out, err = await run_cli(
        tmp_path, "status", "--config", config_file(tmp_path, config), "--name", "Other.Host"
    )
    assert code == 1 and "Traceback" not in err
    assert "device      Other.Host (id other-host)" in out
    assert "unreachable:" in out and "member      unknown" in out
    assert "  cpu  cpu.sh  [local]" in out
    assert not (Path(os.environ.get("HOME", "/")) / ".local/state/reflex/other-host.json").exists()
