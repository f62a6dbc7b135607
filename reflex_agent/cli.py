"""`reflex-agent`: join the fleet, leave it, or show what the network knows of this host.

Exit codes: 0 success; 1 a runtime failure (nothing published, network unreachable);
2 a usage or config error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from reflex_core import __version__
from reflex_core.config import Config, load_config_or_exit
from reflex_core.protocol import ProtocolError

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
    commands = parser.add_subparsers(dest="command", metavar="{join,exit,status}")
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
            await bus.remove_channel_members(config.channel, [ident])
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = _load(args)
    _setup_logging(config.log_level)
    if args.command == "join":
        return asyncio.run(_join(config, args.once))
    if args.command == "exit":
        return asyncio.run(_exit(config))
    return asyncio.run(_status(config))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
