"""`reflex-agent`: join the fleet, leave it, show what the network knows of this host, or trust
an operator key.

Exit codes: 0 success; 1 a runtime failure (nothing published, network unreachable, a file
that cannot be written); 2 a usage or config error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reflex_core import __version__
from reflex_core.atomic import atomic_write
from reflex_core.config import (
    ENV_CONFIG,
    ENV_PREFIX,
    Config,
    ConfigError,
    find_config_file,
    load_config,
    load_config_or_exit,
)
from reflex_core.paths import user_config_file
from reflex_core.protocol import ProtocolError
from reflex_core.signing import canonical_key

PROG = "reflex-agent"

DESCRIPTION = """\
The monitored host's side of Reflex Observer: runs the check scripts, publishes
their results to device.<id>, obeys the dashboard's commands and receives new
scripts from config_chan."""

EPILOG = """\
commands:
  join     register this host and run until SIGINT/SIGTERM (--once: one round, then exit)
  exit     remove this host from the dashboard (membership) and leave presence;
           stop a running agent first, or it shows up online again
  status   print membership, ignore list, interval, online state and the local scripts
  trust    add an operator key (ed25519:<base64>, from `reflex-tui --show-key`) to
           trusted_keys in the config file, so scripts it signs may run here

Configuration: --config FILE, $REFLEX_CONFIG, ./config.ini or the user config dir;
REFLEX_<KEY> environment variables override the file, flags override both."""

log = logging.getLogger("reflex_agent")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", metavar="NAME", help="device name (default: the host name)")
    common.add_argument("--config", metavar="FILE", help="config file to read")
    common.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="debug, info, warning, error or critical (default: config log_level, info)",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{join,exit,status,trust}")
    commands.required = True
    join = commands.add_parser(
        "join", parents=[common], help="register and run the checks until stopped"
    )
    join.add_argument(
        "--once",
        action="store_true",
        help="run every script once, publish one results message and exit (0 if it was published)",
    )
    commands.add_parser("exit", parents=[common], help="remove this device from the dashboard")
    commands.add_parser("status", parents=[common], help="show what the network knows of it")
    trust = commands.add_parser(
        "trust",
        help="add an operator key to trusted_keys in the config file",
        description="Add KEY to trusted_keys in the agent's config file (--config FILE, "
        "$REFLEX_CONFIG, ./config.ini or the user config dir; created there if there is none). "
        "Other lines and comments are kept; the file is replaced atomically.",
    )
    trust.add_argument("key", metavar="KEY", help="the operator public key: ed25519:<base64>")
    trust.add_argument("--config", metavar="FILE", help="config file to change")
    return parser


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # third-party libraries: warnings only
    for name in ("reflex_agent", "reflex_core"):
        logging.getLogger(name).setLevel(level)


def _load(args: argparse.Namespace) -> Config:
    overrides = {"name": args.name, "log_level": args.log_level}
    config = load_config_or_exit(args.config, overrides=overrides, prog=PROG)
    try:
        config.device_id  # noqa: B018 - validate the name once, here
    except ProtocolError as exc:
        print(f"{PROG}: config error: device name: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return config


async def _join(config: Config, once: bool) -> int:
    from reflex_agent.daemon import Agent  # imported late: `--help` stays instant

    agent = Agent(config)
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    stopping = False

    def stop(name: str) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        log.info("%s received: leaving", name)
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        if once:
            published = await agent.run_once()
            if not published:
                print(f"{PROG}: results were not published (see the log above)", file=sys.stderr)
            return 0 if published else 1
        await agent.run()
        return 0  # pragma: no cover - run() only ends by cancellation or failure
    except asyncio.CancelledError:
        if not stopping:
            raise
        main.uncancel()
        return 1 if once else 0
    except Exception:
        # A bug, not an input: keep the traceback for the report; systemd restarts us.
        log.critical("stopped by an internal error", exc_info=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _exit(config: Config) -> int:
    from reflex_core.bus import Bus, BusError, BusSettings

    ident = config.device_id
    # No presence heartbeats: a heartbeat still in flight when the leave goes out would make
    # the server count us present again (until the presence timeout).
    settings = BusSettings.from_config(
        config, user_id=ident, request_timeout=5, connect_timeout=3, presence_heartbeat=False
    )
    bus = Bus(settings)
    await bus.start()
    try:
        try:
            await bus.leave_channel(config.channel)
        except BusError as exc:
            print(f"{PROG}: could not remove {ident} from {config.channel}: {exc}", file=sys.stderr)
            return 1
        print(f"removed {ident} from {config.channel}")
        # The facade only sends a presence leave for channels it is subscribed to (it has no
        # leave for others). So subscribe (briefly present), then unsubscribe, which stops
        # the long-poll and then sends the leave: the dashboard sees the device go offline
        # now rather than after the presence timeout. (Not close() alone: it sends the leave
        # before stopping the long-poll, which can make the server count us present again.)
        channels = [config.config_chan, config.ignore_chan]
        await bus.subscribe(channels)
        try:
            async with asyncio.timeout(5):
                await bus.wait_connected()
        except TimeoutError:
            print(f"{PROG}: presence leave may not have reached the network", file=sys.stderr)
            return 1
        await bus.unsubscribe(channels)
        return 0
    finally:
        await bus.close()


async def _status(config: Config) -> int:
    from reflex_agent.status import collect_status, render_status

    status = await collect_status(config)
    print(render_status(status, config))
    return 1 if status.network_error else 0


# --------------------------------------------------------------------------- trust

_SECTION_RE = re.compile(r"^\s*\[(?P<name>[^\]]*)\]\s*$")
_KEY_LINE_RE = re.compile(
    r"^(?P<head>\s*trusted_keys\s*=[ \t]*)(?P<value>.*?)(?P<tail>[ \t]+[#;].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class TrustEdit:
    """The config text after adding a key, and whether that changed anything."""

    text: str
    changed: bool


def add_trusted_key(text: str, key: str) -> TrustEdit:
    """Add canonical `key` to the `trusted_keys` line that the config reader would use.

    Only that line changes (its items are kept as spelled, its trailing comment too); if the
    file has no such line in its header-less part or `[reflex]` section, one is inserted at
    the end of that part. Every other line, comment and line ending is left as it was.
    """
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    ours = True  # header-less lines are ours (the seed's format), and so is [reflex]
    key_line: int | None = None  # the last one: the reader lets the last one win
    insert_at = 0  # after the last line of ours with content (or a bare [reflex] header)
    for index, line in enumerate(lines):
        bare = line.rstrip("\r\n")
        header = _SECTION_RE.match(bare)
        if header is not None:
            ours = header["name"].strip().lower() == "reflex"
            if ours:
                insert_at = index + 1
            continue
        if not ours:
            continue
        if _KEY_LINE_RE.match(bare):
            key_line = index
        if bare.strip():
            insert_at = index + 1

    if key_line is None:
        if insert_at > 0 and not lines[insert_at - 1].endswith(("\n", "\r")):
            lines[insert_at - 1] += newline
        lines.insert(insert_at, f"trusted_keys = {key}{newline}")
        return TrustEdit("".join(lines), changed=True)

    body = lines[key_line]
    bare = body.rstrip("\r\n")
    match = _KEY_LINE_RE.match(bare)
    assert match is not None
    value = match["value"].strip()
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    items = [item.strip() for item in (value[1:-1] if quoted else value).split(",")]
    items = [item for item in items if item]
    if key in {_canonical_or_none(item) for item in items}:
        return TrustEdit(text, changed=False)
    joined = ", ".join([*items, key])
    if quoted:
        joined = f"{value[0]}{joined}{value[0]}"
    ending = body[len(bare) :] or newline
    lines[key_line] = f"{match['head']}{joined}{match['tail'] or ''}{ending}"
    return TrustEdit("".join(lines), changed=True)


def _canonical_or_none(text: str) -> str | None:
    try:
        return canonical_key(text)
    except ValueError:
        return None


def _trust_target(
    explicit: str | None, env: Mapping[str, str], cwd: Path, user_dir: Path | None
) -> Path:
    """The file `join` would read (an explicit one may not exist yet), else the user one."""
    named = explicit or env.get(ENV_CONFIG)
    if named:
        path = Path(named).expanduser()
        return path if path.is_absolute() else cwd / path
    found = find_config_file(None, env={}, cwd=cwd, user_dir=user_dir)
    if found is not None:
        return found
    return (user_dir / "config.ini") if user_dir is not None else user_config_file()


def trust(
    key_text: str,
    config: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_dir: Path | None = None,
) -> int:
    """`reflex-agent trust KEY`: add KEY to `trusted_keys`; prints what it did."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    try:
        key = canonical_key(key_text)
    except ValueError as exc:
        print(f"{PROG}: not an operator key: {exc}", file=sys.stderr)
        return 2
    path = _trust_target(config, env, cwd, user_dir)
    if path.is_symlink():
        path = path.resolve()  # change the file the link points to, keep the link
    if path.is_dir():
        print(f"{PROG}: {path} is a directory", file=sys.stderr)
        return 2
    try:
        raw = path.read_bytes() if path.exists() else None
    except OSError as exc:
        print(f"{PROG}: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    bom = raw is not None and raw.startswith(b"\xef\xbb\xbf")
    try:
        text = "" if raw is None else raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        print(f"{PROG}: {path}: not UTF-8 text; not changed", file=sys.stderr)
        return 2
    edit = add_trusted_key(text, key)
    if not edit.changed:
        print(f"{key} is already in trusted_keys in {path}")
        return 0
    data = (b"\xef\xbb\xbf" if bom else b"") + edit.text.encode("utf-8")
    mode = (path.stat().st_mode & 0o7777) if raw is not None else 0o600
    problem = _config_problem(path, data, was_valid=raw is None or _loads(path))
    if problem is not None:
        print(f"{PROG}: not changed: the edited file would not load: {problem}", file=sys.stderr)
        return 1
    try:
        atomic_write(path, data, mode=mode)
    except OSError as exc:
        print(f"{PROG}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if raw is None:
        print(f"created {path} with trusted_keys = {key}")
    else:
        print(f"added {key} to trusted_keys in {path}")
    if f"{ENV_PREFIX}TRUSTED_KEYS" in env:
        print(
            f"note: {ENV_PREFIX}TRUSTED_KEYS is set in this environment and overrides the file",
            file=sys.stderr,
        )
    print("restart reflex-agent for the change to take effect")
    return 0


def _loads(path: Path) -> bool:
    try:
        load_config(path, env={}, cwd=path.parent)
    except ConfigError:
        return False
    return True


def _config_problem(path: Path, data: bytes, *, was_valid: bool) -> str | None:
    """Does the edited file still load (and trust the key)? Only an error our edit caused
    counts: a file that did not load before is the administrator's to fix, not ours."""
    if not was_valid:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".check")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        load_config(tmp, env={}, cwd=path.parent)
    except ConfigError as exc:
        return str(exc)
    finally:
        os.unlink(tmp)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "trust":
        return trust(args.key, args.config)
    config = _load(args)
    _setup_logging(config.log_level)
    if args.command == "join":
        return asyncio.run(_join(config, args.once))
    if args.command == "exit":
        return asyncio.run(_exit(config))
    return asyncio.run(_status(config))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
