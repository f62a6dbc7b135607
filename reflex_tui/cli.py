"""`reflex-tui [--config FILE]`: the dashboard in a terminal (80x24 and up, ssh-friendly)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from reflex_core.config import load_config_or_exit


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config_or_exit(args.config, prog="reflex-tui")
    # Log lines would draw over the screen: keep them off the terminal while it runs.
    logging.basicConfig(level=logging.CRITICAL)
    from reflex_tui.app import make_app  # Textual import deferred so --help stays fast

    app = make_app(config)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
