"""run_script with real subprocesses: statuses, timeouts, floods, orphans, start failures."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reflex_agent.runner import (
    TRUNCATION_MARKER,
    RunOutcome,
    command_for,
    parse_outcome,
    run_script,
)

WriteScript = Callable[..., Path]

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("code", "status"), [(0, "ok"), (1, "warning"), (2, "critical"), (3, "unknown")]
)
async def test_exit_codes_map_to_statuses(
    write_script: WriteScript, code: int, status: str
) -> None:
    script = write_script("check.sh", f"echo 'THING {status} | v=1.5s;1;2'\nexit {code}\n")
    outcome = await run_script(script, timeout=5)
    assert outcome.exit_code == code
    assert not outcome.timed_out and outcome.start_error is None and not outcome.truncated
    parsed = parse_outcome(outcome, timeout=5)
    assert (parsed.status, parsed.code) == (status, code)
    assert parsed.output == f"THING {status}"
    assert (parsed.value, parsed.unit) == (1.5, "s")


async def test_plugin_style_python_script(write_script: WriteScript) -> None:
    script = write_script(
        "plugin.py",
        "print(\"DISK WARNING - 85% | 'disk usage'=85%;80;90;0;100 free=15GB\")\n"
        "print('/ 85%')\n"
        "raise SystemExit(1)\n",
        mode=0o644,  # *.py needs no exec bit: the agent's Python runs it
    )
    parsed = parse_outcome(await run_script(script, timeout=5))
    assert (parsed.status, parsed.output, parsed.long_output) == (
        "warning",
        "DISK WARNING - 85%",
        "/ 85%",
    )
    assert (parsed.value, parsed.unit) == (85.0, "%")
    assert [d.label for d in parsed.perf] == ["disk usage", "free"]


async def test_bare_number_script(write_script: WriteScript) -> None:
    """The seed's scripts print only a number: it becomes the value."""
    script = write_script("seed.py", "print(42.5)\n", mode=0o644)
    parsed = parse_outcome(await run_script(script, timeout=5))
    assert (parsed.status, parsed.value, parsed.unit, parsed.output) == ("ok", 42.5, "", "42.5")


async def test_py_runs_with_the_agents_python(write_script: WriteScript) -> None:
    script = write_script("which.py", "import sys\nprint(sys.executable)\n", mode=0o644)
    assert command_for(script) == [sys.executable, str(script)]
    outcome = await run_script(script, timeout=5)
    assert outcome.stdout.strip() == sys.executable


async def test_sh_runs_with_bin_sh_without_exec_bit(write_script: WriteScript) -> None:
    script = write_script("plain.sh", "echo from sh\n", mode=0o644)
    assert command_for(script) == ["/bin/sh", str(script)]
    outcome = await run_script(script, timeout=5)
    assert (outcome.exit_code, outcome.stdout) == (0, "from sh\n")


async def test_executable_runs_directly_honouring_shebang(write_script: WriteScript) -> None:
    script = write_script(
        "check_py", f"#!{sys.executable}\nimport sys\nprint('py', sys.version_info[0])\n"
    )
    assert command_for(script) == [str(script)]
    outcome = await run_script(script, timeout=5)
    assert outcome.stdout == "py 3\n"


async def test_uppercase_suffix_still_picks_the_interpreter(write_script: WriteScript) -> None:
    script = write_script("Upper.PY", "print('ok')\n", mode=0o644)
    assert (await run_script(script, timeout=5)).stdout == "ok\n"


async def test_exit_137_is_unknown_with_the_code(write_script: WriteScript) -> None:
    script = write_script("oom.sh", "echo partial\nexit 137\n")
    outcome = await run_script(script, timeout=5)
    parsed = parse_outcome(outcome)
    assert outcome.exit_code == 137
    assert (parsed.status, parsed.code) == ("unknown", 3)
    assert "137" in parsed.output and "partial" in parsed.output


async def test_killed_by_signal(write_script: WriteScript) -> None:
    script = write_script("suicide.sh", "kill -9 $$\n")
    outcome = await run_script(script, timeout=5)
    parsed = parse_outcome(outcome)
    assert outcome.exit_code == -9
    assert parsed.status == "unknown"
    assert parsed.output == "killed by signal 9 SIGKILL"


async def test_hang_times_out(write_script: WriteScript) -> None:
    script = write_script("hang.sh", "echo started\nsleep 30\n")
    started = time.monotonic()
    outcome = await run_script(script, timeout=0.5)
    elapsed = time.monotonic() - started
    assert outcome.timed_out
    assert 0.45 <= elapsed < 2.5
    assert 450 <= outcome.duration_ms < 2500
    parsed = parse_outcome(outcome, timeout=0.5)
    assert (parsed.status, parsed.code, parsed.output) == ("unknown", 3, "timed out after 0.5 s")
    assert parsed.long_output == "started"


async def test_hang_ignoring_sigterm_gets_sigkill(write_script: WriteScript, procs: Any) -> None:
    # SIG_IGN is inherited through exec, so the sleep ignores SIGTERM as well.
    script = write_script("stubborn.sh", "trap '' TERM\necho $$\nsleep 30\n")
    started = time.monotonic()
    outcome = await run_script(script, timeout=0.3, kill_grace=0.3)
    assert outcome.timed_out
    assert time.monotonic() - started < 2.5
    assert not procs.is_running(int(outcome.stdout.split()[0]))
    assert parse_outcome(outcome, timeout=0.3).output == "timed out after 0.3 s"


async def test_timeout_kills_the_whole_group(write_script: WriteScript, procs: Any) -> None:
    script = write_script("tree.sh", "sleep 30 &\necho $!\nsleep 30\n")
    outcome = await run_script(script, timeout=0.5)
    assert outcome.timed_out
    child = int(outcome.stdout.split()[0])
    assert not procs.is_running(child)


async def test_background_child_that_outlives_the_script_is_killed(
    write_script: WriteScript, procs: Any
) -> None:
    # The child keeps stdout open: run_script returns only once it is dead.
    script = write_script("fork.sh", "sleep 30 &\necho $!\necho 'OK | v=1'\nexit 0\n")
    started = time.monotonic()
    outcome = await run_script(script, timeout=10)
    assert time.monotonic() - started < 2
    assert outcome.exit_code == 0 and not outcome.timed_out
    child = int(outcome.stdout.split()[0])
    assert not procs.is_running(child)


async def test_detached_background_child_is_killed_too(
    write_script: WriteScript, procs: Any
) -> None:
    # This child closes its pipes, so nothing ties run_script's return to its death:
    # the kill was sent before returning; wait (bounded) for it to land.
    script = write_script("detach.py", _DETACH, mode=0o644)
    outcome = await run_script(script, timeout=10)
    child = int(outcome.stdout.split()[0])
    assert procs.wait_not_running(child), "background child survived its script"


_DETACH = """\
import os, subprocess, sys
child = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid)
os._exit(0)
"""


async def test_escaped_session_cannot_hang_the_runner(
    write_script: WriteScript, procs: Any
) -> None:
    """A grandchild that calls setsid leaves the group (and holds our pipe): we stop waiting.

    Such a process cannot be tracked without cgroups; the runner must still return.
    """
    script = write_script("escape.py", _ESCAPE, mode=0o644)
    started = time.monotonic()
    outcome = await run_script(script, timeout=5, kill_grace=0.3)
    escaped = int(outcome.stdout.split()[0])
    try:
        assert time.monotonic() - started < 2
        assert outcome.exit_code == 0 and not outcome.timed_out
    finally:
        procs.kill(escaped)


_ESCAPE = """\
import os
pid = os.fork()
if pid == 0:
    os.setsid()
    os.execvp("sleep", ["sleep", "30"])
print(pid, flush=True)
"""


async def test_output_flood_is_capped_and_memory_bounded(write_script: WriteScript) -> None:
    script = write_script(
        "flood.py",
        "import sys\n"
        "chunk = b'x' * (1 << 20)\n"
        "for _ in range(50):\n"
        "    sys.stdout.buffer.write(chunk)\n"
        "    sys.stderr.buffer.write(chunk[:1 << 16])\n"
        "sys.stdout.buffer.write(b'\\nEND')\n",
        mode=0o644,
    )
    tracemalloc.start()
    try:
        outcome = await run_script(script, timeout=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.exit_code == 0 and not outcome.timed_out
    assert outcome.truncated
    assert len(outcome.stdout) == 64 * 1024
    assert len(outcome.stderr) == 64 * 1024
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak} bytes for a 53 MB flood"
    parsed = parse_outcome(outcome)
    assert parsed.long_output.endswith(TRUNCATION_MARKER)


async def test_output_cap_parameter(write_script: WriteScript) -> None:
    script = write_script(
        "chatty.sh", "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done\n"
    )
    outcome = await run_script(script, timeout=5, output_cap=100)
    assert len(outcome.stdout.encode()) == 100 and outcome.truncated
    assert outcome.stdout.startswith("line 0\nline 1\n")


async def test_stderr_is_read_concurrently(write_script: WriteScript) -> None:
    """1 MB on stderr before any stdout would deadlock a reader that drains stdout first."""
    script = write_script(
        "noisy.py",
        "import sys\nsys.stderr.write('e' * (1 << 20))\nsys.stderr.flush()\nprint('OK | v=1')\n",
        mode=0o644,
    )
    outcome = await run_script(script, timeout=5)
    assert outcome.exit_code == 0 and outcome.stdout == "OK | v=1\n"
    assert outcome.truncated and len(outcome.stderr) == 64 * 1024


async def test_non_utf8_output_is_replaced_not_fatal(write_script: WriteScript) -> None:
    script = write_script("latin.sh", "printf 'caf\\351 \\377\\376 ok | v=2\\n'\n")
    outcome = await run_script(script, timeout=5)
    parsed = parse_outcome(outcome)
    assert parsed.output == "caf\ufffd \ufffd\ufffd ok"
    assert parsed.value == 2.0


async def test_stdin_is_dev_null(write_script: WriteScript) -> None:
    script = write_script("prompt.sh", 'read answer\necho "got [$answer]"\n')
    outcome = await run_script(script, timeout=5)
    assert outcome.stdout == "got []\n" and not outcome.timed_out


async def test_cwd_and_env(write_script: WriteScript, tmp_path: Path) -> None:
    script = write_script("where.sh", 'pwd\necho "$REFLEX_TEST_VALUE"\n')
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REFLEX_TEST_VALUE": "hello"}
    outcome = await run_script(script, timeout=5, cwd=tmp_path, env=env)
    assert outcome.stdout.splitlines() == [str(tmp_path), "hello"]


async def test_relative_path_is_not_looked_up_on_path_or_cwd(
    write_script: WriteScript, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script("rel", "#!/bin/sh\necho relative\n")
    monkeypatch.chdir(script.parent)
    outcome = await run_script(Path("rel"), timeout=5, cwd=tmp_path)
    assert outcome.stdout == "relative\n"


async def test_stderr_explains_a_silent_failure(write_script: WriteScript) -> None:
    script = write_script("fails.sh", "echo 'disk not mounted' >&2\nexit 2\n")
    parsed = parse_outcome(await run_script(script, timeout=5))
    assert (parsed.status, parsed.output) == ("critical", "disk not mounted")
    assert parsed.long_output == "disk not mounted"


async def test_python_traceback_is_a_crash_not_a_warning(write_script: WriteScript) -> None:
    script = write_script("broken.py", "import no_such_module_here\n", mode=0o644)
    outcome = await run_script(script, timeout=5)
    parsed = parse_outcome(outcome)
    assert outcome.exit_code == 1
    assert (parsed.status, parsed.code) == ("unknown", 3)
    assert parsed.output.startswith("script crashed: ModuleNotFoundError")


async def test_no_output_at_all(write_script: WriteScript) -> None:
    parsed = parse_outcome(await run_script(write_script("quiet.sh", "exit 0\n"), timeout=5))
    assert (parsed.status, parsed.output) == ("ok", "(no output)")


# --- scripts that cannot start ---------------------------------------------------------------


async def test_non_executable_file(write_script: WriteScript) -> None:
    script = write_script("notexec", "#!/bin/sh\necho hi\n", mode=0o644)
    outcome = await run_script(script, timeout=5)
    assert outcome.exit_code is None
    assert outcome.start_error is not None and "not executable" in outcome.start_error
    parsed = parse_outcome(outcome)
    assert (parsed.status, parsed.code) == ("unknown", 3)
    assert parsed.output.startswith("cannot run: permission denied")


async def test_missing_shebang_interpreter(write_script: WriteScript) -> None:
    script = write_script("ghost", "#!/nonexistent/interpreter -x\necho hi\n")
    outcome = await run_script(script, timeout=5)
    assert (
        outcome.start_error == "interpreter not found: /nonexistent/interpreter (from the #! line)"
    )


async def test_no_shebang_is_exec_format_error(write_script: WriteScript) -> None:
    outcome = await run_script(write_script("noshebang", "echo hi\n"), timeout=5)
    assert outcome.start_error is not None and outcome.start_error.startswith("exec format error")


async def test_missing_script(tmp_path: Path) -> None:
    outcome = await run_script(tmp_path / "gone.py", timeout=5)
    assert outcome == RunOutcome(None, "", "", outcome.duration_ms, start_error="script not found")


async def test_directory_is_not_a_script(tmp_path: Path) -> None:
    (tmp_path / "dir.sh").mkdir()
    outcome = await run_script(tmp_path / "dir.sh", timeout=5)
    assert outcome.start_error == "not a regular file"


async def test_missing_working_directory(write_script: WriteScript, tmp_path: Path) -> None:
    script = write_script("ok.sh", "echo hi\n")
    outcome = await run_script(script, timeout=5, cwd=tmp_path / "nowhere")
    assert outcome.start_error is not None and "working directory" in outcome.start_error


async def test_unreadable_python_script(
    write_script: WriteScript, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script("secret.py", "print(1)\n", mode=0o000)
    if os.geteuid() == 0:
        # root reads any file, so make the permission check see what a normal user would.
        real_access = os.access
        monkeypatch.setattr(
            "reflex_agent.runner.os.access",
            lambda p, mode, **kw: False if str(p) == str(script) else real_access(p, mode, **kw),
        )
    outcome = await run_script(script, timeout=5)
    assert outcome.start_error == "permission denied: script is not readable"


# --- lifecycle -------------------------------------------------------------------------------


async def test_cancelling_the_caller_kills_the_script(
    write_script: WriteScript, tmp_path: Path, procs: Any
) -> None:
    fifo = tmp_path / "pid.fifo"
    os.mkfifo(fifo)
    script = write_script("wait.sh", f"echo $$ > '{fifo}'\nexec sleep 30\n")
    loop = asyncio.get_running_loop()
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open before the writer: no blocking
    try:
        readable = loop.create_future()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        task = asyncio.create_task(run_script(script, timeout=30))
        await asyncio.wait_for(readable, 10)
        loop.remove_reader(fd)
        pid = int(os.read(fd, 64).split()[0])
    finally:
        os.close(fd)
    assert procs.is_running(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not procs.is_running(pid)


async def test_many_concurrent_runs(write_script: WriteScript) -> None:
    scripts = [write_script(f"c{i}.sh", f"echo 'OK | v={i}'\n") for i in range(16)]
    outcomes = await asyncio.gather(*(run_script(s, timeout=10) for s in scripts))
    assert [parse_outcome(o).value for o in outcomes] == [float(i) for i in range(16)]
