"""Run one check script as a subprocess, safely and cheaply.

What "safely" means here, and why:

* Every run gets its own process group (``start_new_session``) so the agent
  can signal the script *and everything it spawned* at once; a check that
  starts ``sleep 999 &`` must not leave an orphan behind on every round.
* A run that outlives ``timeout`` gets SIGTERM (a chance to clean up), then
  SIGKILL after a short grace. Once the main process has exited, any member
  left in its group is killed too. asyncio's child watcher reaps the main
  process, so no zombies of ours remain. (A grandchild that calls ``setsid``
  itself has left the group and cannot be tracked without cgroups.)
* stdout and stderr are consumed as they arrive by a ``SubprocessProtocol``
  that keeps at most ``output_cap`` bytes per stream and drops the rest: a
  flood can neither fill the pipe and block the script nor grow our memory.
* Nothing here raises for a script's misbehaviour: a script that cannot start
  comes back as ``start_error`` with the reason.

"Cheaply": a round runs every few seconds on every host, so the hot path is one
``loop.subprocess_exec`` with a protocol object (no reader tasks, no
StreamReader buffering, no polling, no helper processes, no psutil).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reflex_agent.perfdata import ParsedOutput, parse_output

__all__ = [
    "DEFAULT_KILL_GRACE",
    "DEFAULT_OUTPUT_CAP",
    "TRUNCATION_MARKER",
    "RunOutcome",
    "command_for",
    "parse_outcome",
    "run_script",
]

DEFAULT_OUTPUT_CAP = 64 * 1024
DEFAULT_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL; also how long we wait for pipes after exit."""

TRUNCATION_MARKER = "[output truncated by reflex-agent]"


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What happened when a script ran, before any interpretation.

    ``exit_code`` is ``None`` only when the script never started; a death by
    signal N is ``-N`` (asyncio's convention).
    """

    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False
    start_error: str | None = None
    truncated: bool = False


def command_for(path: Path) -> list[str]:
    """The argv that runs ``path``: ``*.py`` with our Python, ``*.sh`` with /bin/sh.

    ``*.py`` uses the agent's own interpreter (as the seed did) so a check can
    rely on the same Python everywhere; anything else is executed directly and
    its ``#!`` line decides. The path is made absolute so a bare name is never
    looked up on ``$PATH`` and ``cwd`` cannot change what runs.
    """
    target = os.path.abspath(path)
    suffix = Path(target).suffix.lower()
    if suffix == ".py":
        return [sys.executable or "python3", target]
    if suffix == ".sh":
        return ["/bin/sh", target]
    return [target]


class _Collector(asyncio.SubprocessProtocol):
    """Collects capped stdout/stderr and signals exit and end-of-output."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.out = bytearray()
        self.err = bytearray()
        self.truncated = False
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self._open_pipes = 2

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self.out if fd == 1 else self.err
        room = self.cap - len(buf)
        if len(data) <= room:
            buf += data
            return
        if room > 0:
            buf += data[:room]
        self.truncated = True

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in (1, 2):
            self._open_pipes -= 1
            if self._open_pipes <= 0:
                self.closed.set()

    def process_exited(self) -> None:
        self.exited.set()


def _signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group that is already empty is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(transport: asyncio.SubprocessTransport, pgid: int) -> None:
    """SIGKILL the group, and the main process itself in case it left its group."""
    _signal_group(pgid, signal.SIGKILL)
    try:
        transport.kill()
    except (ProcessLookupError, RuntimeError):
        pass


def _prepare(path: Path) -> tuple[list[str], str | None]:
    """Build the argv and catch what would surface as a confusing interpreter error.

    ``python missing.py`` exits 2 ("can't open file"), which would read as
    CRITICAL; reporting "not found" / "not readable" as a start error is truthful.
    Returns (argv, problem); the script path is always ``argv[-1]``.
    """
    argv = command_for(path)
    target = argv[-1]
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return argv, "script not found"
    except OSError as exc:
        return argv, f"cannot access script: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return argv, "not a regular file"
    if argv[0] != target and not os.access(target, os.R_OK):
        return argv, "permission denied: script is not readable"
    return argv, None


def _shebang_interpreter(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.readline(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    parts = head[2:].strip().split()
    return os.fsdecode(parts[0]) if parts else None


def _describe_start_error(exc: BaseException, path: str, argv: list[str], cwd: str | None) -> str:
    """Say why a script could not start in terms its author can act on."""
    if not isinstance(exc, OSError):
        return f"cannot start: {exc}"
    filename = getattr(exc, "filename", None)
    if cwd is not None and filename == cwd:
        return f"cannot start: working directory {cwd}: {exc.strerror}"
    if exc.errno == errno.ENOENT:
        if argv[0] != path:
            return f"interpreter not found: {argv[0]}"
        interpreter = _shebang_interpreter(path)
        if interpreter:
            return f"interpreter not found: {interpreter} (from the #! line)"
        return "script not found"
    if exc.errno == errno.EACCES:
        if argv[0] == path:
            return "permission denied: not executable (chmod +x, or name it *.py or *.sh)"
        return f"permission denied: {exc.filename or argv[0]}"
    if exc.errno == errno.ENOEXEC:
        return "exec format error: no #! line and not a binary this system can run"
    return f"cannot start: {exc.strerror or exc}"


async def run_script(
    path: Path,
    *,
    timeout: float | None,  # noqa: ASYNC109 - the caller's budget per script, by design
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> RunOutcome:
    """Run one script to completion (or timeout) and report what happened.

    ``timeout`` bounds the main process; ``None`` means no limit. ``env`` is the
    full environment (``None`` inherits ours). stdin is /dev/null so a script
    that prompts fails fast instead of hanging. Never raises for anything the
    script does; cancelling the caller kills the script's group and re-raises.
    """
    started = time.monotonic()
    argv, problem = _prepare(path)
    target = argv[-1]
    cwd_str = os.fspath(cwd) if cwd is not None else None

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    if problem is not None:
        return RunOutcome(None, "", "", elapsed_ms(), start_error=problem)

    loop = asyncio.get_running_loop()
    collector = _Collector(max(0, output_cap))
    try:
        transport, _ = await loop.subprocess_exec(
            lambda: collector,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd_str,
            env=env,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        reason = _describe_start_error(exc, target, argv, cwd_str)
        return RunOutcome(None, "", "", elapsed_ms(), start_error=reason)

    pgid = transport.get_pid()  # start_new_session: the pid is the group id
    timed_out = False
    try:
        if not collector.exited.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await collector.exited.wait()
            except TimeoutError:
                timed_out = True
                _signal_group(pgid, signal.SIGTERM)
                try:
                    async with asyncio.timeout(kill_grace):
                        await collector.exited.wait()
                except TimeoutError:
                    _kill(transport, pgid)
                    await collector.exited.wait()
        # The main process is gone; whatever is left in its group is an orphan.
        _signal_group(pgid, signal.SIGKILL)
        if not collector.closed.is_set():
            # Killed members close the pipes as they die. Something that left the
            # group (setsid) may hold them forever: stop listening after a grace.
            try:
                async with asyncio.timeout(kill_grace):
                    await collector.closed.wait()
            except TimeoutError:
                pass
    finally:
        try:
            if not collector.exited.is_set():
                # Cancelled (agent shutdown, round abandoned): take the group down
                # too, and wait (bounded) for the exit so nothing outlives the caller.
                _kill(transport, pgid)
                async with asyncio.timeout(kill_grace):
                    await collector.exited.wait()
        except TimeoutError:
            pass
        finally:
            transport.close()

    return RunOutcome(
        exit_code=transport.get_returncode(),
        stdout=collector.out.decode("utf-8", "replace"),
        stderr=collector.err.decode("utf-8", "replace"),
        duration_ms=elapsed_ms(),
        timed_out=timed_out,
        start_error=None,
        truncated=collector.truncated,
    )


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


_TRACEBACK = "Traceback (most recent call last):"


def parse_outcome(outcome: RunOutcome, *, timeout: float | None = None) -> ParsedOutput:
    """Interpret a run as a check result (the issue's "Faults" rules).

    * cannot start -> unknown with the reason;
    * timed out -> unknown "timed out after N s" (partial stdout kept as long output);
    * otherwise the Monitoring Plugins parse of stdout + exit code, except:
      - a Python traceback with exit 1 is a crash, not a WARNING -> unknown;
      - with nothing on stdout, the last stderr line explains the result
        (that is where a shell or interpreter puts its error).
    A truncated run gets a visible marker at the end of its long output.
    """
    if outcome.start_error is not None:
        return ParsedOutput(status="unknown", code=3, output=f"cannot run: {outcome.start_error}")
    if outcome.timed_out:
        limit = _format_seconds(timeout) if timeout is not None else "?"
        long_output = outcome.stdout.strip()
        if outcome.truncated:
            long_output = f"{long_output}\n{TRUNCATION_MARKER}".strip()
        return ParsedOutput(
            status="unknown",
            code=3,
            output=f"timed out after {limit} s",
            long_output=long_output,
        )

    parsed = parse_output(outcome.stdout, outcome.exit_code)
    stderr_last = _last_line(outcome.stderr)
    if outcome.exit_code == 1 and _TRACEBACK in outcome.stderr:
        parsed = replace(
            parsed,
            status="unknown",
            code=3,
            output=f"script crashed: {stderr_last}",
            long_output=outcome.stderr.strip(),
        )
    elif not outcome.stdout.strip():
        if stderr_last:
            output = f"{parsed.output}: {stderr_last}" if parsed.output else stderr_last
            parsed = replace(parsed, output=output, long_output=outcome.stderr.strip())
        elif not parsed.output:
            parsed = replace(parsed, output="(no output)")
    if outcome.truncated:
        parsed = replace(parsed, long_output=f"{parsed.long_output}\n{TRUNCATION_MARKER}".strip())
    return parsed
