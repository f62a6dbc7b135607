"""`reflex-tui [--config FILE] [--demo | --show-key]`: the dashboard in a terminal (80x24 and
up, ssh-friendly), the zero-config demo, and the operator key agents must trust."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from reflex_core.config import Config, load_config_or_exit
from reflex_core.signing import default_key_path, load_or_create_key, public_key_text, trust_line
from reflex_tui.demo import Demo, maybe_embed_local_hub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reflex-tui",
        description=(
            "Reflex Observer dashboard: every device registered on the membership channel, "
            "live, over PubNub (or a local reflex-hub). Keyboard first; press ? for keys."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $REFLEX_CONFIG, ./config.ini, then the user config dir)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--demo",
        action="store_true",
        help=(
            "try it with nothing set up: an embedded hub, an agent for this machine running "
            "the bundled checks, and the dashboard; quitting removes everything"
        ),
    )
    mode.add_argument(
        "--show-key",
        action="store_true",
        help="print the operator public key and the line agents need to trust it",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.demo:
        return run_demo()
    config = load_config_or_exit(args.config, prog="reflex-tui")
    if args.show_key:
        return show_key(config)
    problem = None
    try:
        hub = maybe_embed_local_hub(config)
    except Exception as exc:  # port taken by something else, data dir locked, ...
        problem = (
            f"reflex-tui: nothing answered at {config.hub_url} and an embedded hub could not "
            f"start there ({exc}); the dashboard kept trying to connect"
        )
        hub = None
    try:
        return run_dashboard(config, embedded_hub=hub is not None)
    finally:
        if hub is not None:
            hub.stop()
        if problem:  # after the app: the full-screen UI would have hidden it
            print(problem, file=sys.stderr)


def run_dashboard(config: Config, *, embedded_hub: bool = False) -> int:
    # Log lines would draw over the screen: keep them off the terminal while it runs.
    logging.basicConfig(level=logging.CRITICAL)
    from reflex_tui.app import make_app  # Textual import deferred so --help stays fast

    app = make_app(config)
    app.fleet.hub_embedded = embedded_hub
    # SIGTERM/SIGHUP (terminal closed, ssh dropped) end the app like `q` does, so the
    # caller's cleanup (demo agent, embedded hub, temp dir) runs instead of the process
    # vanishing mid-way.
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, lambda *_: app.exit())
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return app.return_code or 0


def run_demo() -> int:
    """`--demo`: everything in a temp dir, removed on the way out (also on Ctrl-C)."""
    demo = Demo()
    try:
        config = demo.start()
    except Exception as exc:
        print(f"reflex-tui: the demo could not start: {exc}", file=sys.stderr)
        return 1
    try:
        return run_dashboard(config, embedded_hub=True)
    except KeyboardInterrupt:
        return 130
    finally:
        demo.close()


def show_key(config: Config) -> int:
    """Print the operator public key (creating the key if missing) and how to trust it."""
    path = default_key_path(config)
    try:
        key = load_or_create_key(path)
    except (OSError, ValueError) as exc:
        print(f"reflex-tui: cannot read or create the signing key {path}: {exc}", file=sys.stderr)
        return 1
    public = public_key_text(key.public_key())
    print(f"operator key: {path}")
    print(f"public key:   {public}")
    print()
    print("Agents run uploaded scripts only if they trust this key. On each host, either")
    print("add this line to the agent's config:")
    print()
    print(f"    {trust_line(public)}")
    print()
    print("or run:")
    print()
    print(f"    reflex-agent trust {public}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
