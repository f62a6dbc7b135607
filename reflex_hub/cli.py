"""``reflex-hub``: run the local PubNub-compatible hub in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from reflex_hub.server import HubStartError, default_data_dir, start_hub

DESCRIPTION = """\
Run reflex-hub, a local server that speaks the part of PubNub's REST protocol
Reflex Observer uses (publish/subscribe, presence, App Context, File Sharing,
message history), so the official PubNub SDK can point at it unchanged.

It is a development, demo and test backend: one process, state in SQLite,
no TLS and no access control (anyone who can reach the port can read and
write everything). Fleets in production run on PubNub itself.
"""

EPILOG = """\
Point a client at it with origin = HOST:PORT and ssl = false. State lives
in SQLite under --data (default: {default});
--memory keeps nothing on disk. With --pub-key and --sub-key, requests using
other keys are refused the way PubNub refuses invalid keys; without them any
keys are accepted. GET /_hub/stats reports request counts by endpoint kind.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reflex-hub",
        description=DESCRIPTION,
        epilog=EPILOG.format(default=default_data_dir()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8787,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--data", type=Path, metavar="DIR", help="directory for the hub's state")
    storage.add_argument(
        "--memory", action="store_true", help="keep all state in memory (lost on exit)"
    )
    parser.add_argument("--pub-key", metavar="K", help="only accept this publish key")
    parser.add_argument("--sub-key", metavar="K", help="only accept this subscribe key")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(args: argparse.Namespace) -> int:
    # Handlers go in before anything is printed: whoever reads the first line
    # may signal at once, and must get a clean stop, not a default-action kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C arrives as KeyboardInterrupt
            pass
    handle = await start_hub(
        args.host,
        args.port,
        data_dir=args.data,
        memory=args.memory,
        pub_key=args.pub_key,
        sub_key=args.sub_key,
    )
    # The hub's own process: everything imported and set up so far lives until exit, so
    # full collections need not walk it again (one ~25 ms pause less every few seconds
    # under load, from gc callbacks during `python -m bench --only hub_latency`).
    gc.collect()
    gc.freeze()
    # Scripts and tests wait for this exact line, so it is the first output and flushed.
    print(f"reflex-hub listening on http://{handle.origin}", flush=True)
    if not _is_loopback(args.host):
        print(
            f"reflex-hub: warning: listening on {args.host}, which is not a loopback address;"
            " the hub has no access control, anyone who can reach this port can read and"
            " write all of its data",
            file=sys.stderr,
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await handle.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"reflex-hub: error: --port must be 0..65535, not {args.port}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="reflex-hub: %(levelname)s: %(message)s")
    try:
        return asyncio.run(_serve(args))
    except HubStartError as exc:
        print(f"reflex-hub: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
