"""Where Reflex keeps things on disk.

One module so every program agrees on the same locations, and so tests can see
at a glance which functions touch the real user directories (only the
platformdirs-based ones below; nothing here creates a directory).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

import reflex_core

APP_NAME = "reflex"
CONFIG_FILE_NAME = "config.ini"


def bundled_scripts_dir() -> Path:
    """The checks shipped with the product (`scripts/` at the repository root).

    Resolved from the package location rather than the working directory, so an
    agent started from anywhere (systemd, cron, a test's tmp dir) finds them.
    """
    return Path(reflex_core.__file__).resolve().parent.parent / "scripts"


def user_config_dir() -> Path:
    """`<user config dir>/reflex`, e.g. `~/.config/reflex` on Linux."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_config_file() -> Path:
    """The last place `load_config` looks: `<user config dir>/reflex/config.ini`."""
    return user_config_dir() / CONFIG_FILE_NAME


def user_state_dir() -> Path:
    """Agent state (ignore list, interval) that must survive restarts and upgrades."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def hub_data_dir() -> Path:
    """Default `reflex-hub --data` directory: `<user data dir>/reflex/hub`."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "hub"
