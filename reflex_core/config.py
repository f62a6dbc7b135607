"""Configuration: one typed, frozen `Config` from file, environment and CLI flags.

Precedence, lowest to highest: built-in defaults, the config file, `REFLEX_<KEY>`
environment variables, CLI overrides. The file is the first of `--config FILE`,
`$REFLEX_CONFIG`, `./config.ini`, `<user config dir>/reflex/config.ini`; having
none at all is fine (local mode with defaults).

The file format is the seed's: plain `key = value` lines without a section
header, `#`/`;` comments. A `[reflex]` section is accepted too, so the file can
share an ini with other tools. Every bad value is a `ConfigError` naming where it
came from and what was expected; CLIs call `load_config_or_exit`, which turns it
into one stderr line and exit code 2, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from reflex_core import protocol
from reflex_core.paths import (
    CONFIG_FILE_NAME,
    bundled_scripts_dir,
    user_config_dir,
    user_state_dir,
)

#: Keys the local hub accepts; used when the config has no real PubNub keys.
LOCAL_PUB_KEY: Final = "pub-c-reflex-local"
LOCAL_SUB_KEY: Final = "sub-c-reflex-local"
LOCAL_ORIGIN: Final = "127.0.0.1:8787"
#: Values that mean "no key yet": the seed's config.ini shipped with these.
KEY_PLACEHOLDERS: Final = frozenset({"", "pub-key-here", "sub-key-here"})

ENV_CONFIG: Final = "REFLEX_CONFIG"
ENV_PREFIX: Final = "REFLEX_"
SECTION: Final = "reflex"

DEFAULT_CONFIG_CHAN: Final = "config"
DEFAULT_IGNORE_CHAN: Final = "ignore"
DEFAULT_CHANNEL: Final = "availability_monitor"
DEFAULT_INTERVAL: Final = 10
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_PRESENCE_TIMEOUT: Final = 120
MIN_PRESENCE_TIMEOUT: Final = 20  # PubNub's floor
MAX_PRESENCE_TIMEOUT: Final = 3600
DEFAULT_RESEND_AFTER_DAYS: Final = 20.0
DEFAULT_SYNC_EVERY: Final = 1800
DEFAULT_LOG_LEVEL: Final = "INFO"
MAX_CHANNEL_CHARS: Final = 92  # PubNub's cap on channel names


class ConfigError(Exception):
    """A config value that cannot be used. The message is meant for the user as is."""


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Something odd but harmless (an unknown key): reported, then ignored."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the three programs read from configuration.

    The field defaults are local mode, so `Config(origin="127.0.0.1:PORT")` is
    a ready test config for a hub on that port; `load_config` builds it from
    real files. `local` is True when no real PubNub keys were configured.
    """

    pub: str = LOCAL_PUB_KEY
    sub: str = LOCAL_SUB_KEY
    origin: str = LOCAL_ORIGIN
    ssl: bool = False
    scripts: Path = field(default_factory=bundled_scripts_dir)
    config_chan: str = DEFAULT_CONFIG_CHAN
    ignore_chan: str = DEFAULT_IGNORE_CHAN
    channel: str = DEFAULT_CHANNEL
    interval: int = DEFAULT_INTERVAL
    ignore_list: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    presence_timeout: int = DEFAULT_PRESENCE_TIMEOUT
    cipher_key: str | None = None
    name: str | None = None
    auth_key: str | None = None
    trusted_keys: tuple[str, ...] = ()
    allow_unsigned_scripts: bool = False
    signing_key: Path | None = None
    resend_after: float = DEFAULT_RESEND_AFTER_DAYS
    sync_every: int = DEFAULT_SYNC_EVERY
    log_level: str = DEFAULT_LOG_LEVEL
    state_dir: Path = field(default_factory=user_state_dir)
    local: bool = True
    source: Path | None = None

    @property
    def hub_url(self) -> str | None:
        """Base URL of the PubNub-compatible endpoint (`http://127.0.0.1:8787` in local
        mode); None when talking to PubNub itself."""
        if not self.origin:
            return None
        return f"{'https' if self.ssl else 'http'}://{self.origin}"

    @property
    def device_name(self) -> str:
        """The real name this host reports: `name` from the config, else the host name."""
        return self.name or socket.gethostname()

    @property
    def device_id(self) -> str:
        return protocol.device_id(self.device_name)

    @property
    def resend_after_seconds(self) -> float:
        return self.resend_after * 86_400


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: tuple[ConfigWarning, ...] = ()


# --- value parsers: text -> typed value, or _Bad(expected) ----------------------------------
class _Bad(Exception):
    """Internal: a value did not parse; carries the "expected ..." text."""


_BOOLS: Final = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_LOG_LEVELS: Final = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
}
_ORIGIN_RE: Final = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d{1,5}))?"
)
_CHANNEL_FORBIDDEN: Final = re.compile(r"[,:*/\\\s\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class _Key:
    parse: Callable[[str, Path], Any]  # (text, base dir for relative paths) -> value
    expected: str
    secret: bool = False  # never echo the value in messages


def _whole(lo: int, hi: int) -> Callable[[str, Path], int]:
    def parse(text: str, _base: Path) -> int:
        if not re.fullmatch(r"[+-]?\d{1,12}", text) or not lo <= int(text) <= hi:
            raise _Bad
        return int(text)

    return parse


def _positive(hi: float) -> Callable[[str, Path], float]:
    def parse(text: str, _base: Path) -> float:
        try:
            number = float(text)
        except ValueError:
            raise _Bad from None
        if not (math.isfinite(number) and 0 < number <= hi):
            raise _Bad
        return number

    return parse


def _bool(text: str, _base: Path) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise _Bad from None


def _text(text: str, _base: Path) -> str:
    return text


def _optional_text(text: str, _base: Path) -> str | None:
    return text or None


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _origin(text: str, _base: Path) -> str:
    match = _ORIGIN_RE.fullmatch(text)
    if not match or (match["port"] is not None and not 1 <= int(match["port"]) <= 65535):
        raise _Bad
    return text


def _channel(text: str, _base: Path) -> str:
    if (
        len(text) > MAX_CHANNEL_CHARS
        or _CHANNEL_FORBIDDEN.search(text)
        or text.startswith(protocol.DEVICE_CHANNEL_PREFIX)
        or text.endswith("-pnpres")
    ):
        raise _Bad
    return text


def _names(text: str, _base: Path) -> tuple[str, ...]:
    try:
        return protocol.split_names(text)
    except protocol.ProtocolError as exc:
        raise _Bad(f"comma-separated test names ({exc})") from None


def _device_name(text: str, _base: Path) -> str:
    if len(text) > protocol.MAX_HOST_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _Bad
    return text


def _trusted_keys(text: str, _base: Path) -> tuple[str, ...]:
    """Keys come back in one canonical spelling (standard, padded base64), so the
    agent can compare them as strings."""
    keys = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        algorithm, sep, encoded = item.partition(":")
        raw = _decode_key(encoded) if algorithm.lower() == "ed25519" and sep else None
        if raw is None:
            raise _Bad
        keys.append("ed25519:" + base64.b64encode(raw).decode("ascii"))
    return tuple(dict.fromkeys(keys))


def _decode_key(encoded: str) -> bytes | None:
    """Standard or URL-safe base64 of a 32-byte Ed25519 public key, padding optional."""
    standard = encoded.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _log_level(text: str, _base: Path) -> str:
    try:
        return _LOG_LEVELS[text.lower()]
    except KeyError:
        raise _Bad from None


# One table: the set of known keys, how to parse each, and what to say when it is wrong.
_KEYS: Final[Mapping[str, _Key]] = {
    "pub": _Key(_text, "a PubNub publish key", secret=True),
    "sub": _Key(_text, "a PubNub subscribe key", secret=True),
    "origin": _Key(_origin, "host:port without a scheme, e.g. 127.0.0.1:8787"),
    "ssl": _Key(_bool, "true or false"),
    "scripts": _Key(_path, "a directory path"),
    "config_chan": _Key(_channel, "a channel name (no , : * / \\ or spaces, not device.*)"),
    "ignore_chan": _Key(_channel, "a channel name (no , : * / \\ or spaces, not device.*)"),
    "channel": _Key(_channel, "a channel name (no , : * / \\ or spaces, not device.*)"),
    "interval": _Key(
        _whole(protocol.MIN_INTERVAL, protocol.MAX_INTERVAL),
        f"a whole number of seconds from {protocol.MIN_INTERVAL} to {protocol.MAX_INTERVAL}",
    ),
    "ignore_list": _Key(_names, "comma-separated test names"),
    "timeout": _Key(_positive(86_400), "a number of seconds above 0 and at most 86400"),
    "presence_timeout": _Key(
        _whole(MIN_PRESENCE_TIMEOUT, MAX_PRESENCE_TIMEOUT),
        f"a whole number of seconds from {MIN_PRESENCE_TIMEOUT} to {MAX_PRESENCE_TIMEOUT}",
    ),
    "cipher_key": _Key(_optional_text, "a cipher key", secret=True),
    "name": _Key(_device_name, "a host name (at most 255 characters, no control characters)"),
    "auth_key": _Key(_optional_text, "an auth key or token", secret=True),
    "trusted_keys": _Key(_trusted_keys, "comma-separated keys like ed25519:<base64 of 32 bytes>"),
    "allow_unsigned_scripts": _Key(_bool, "true or false"),
    "signing_key": _Key(_path, "a file path"),
    "resend_after": _Key(_positive(365), "a number of days above 0 and at most 365"),
    "sync_every": _Key(_whole(1, 86_400), "a whole number of seconds from 1 to 86400"),
    "log_level": _Key(_log_level, "one of debug, info, warning, error, critical"),
    "state_dir": _Key(_path, "a directory path"),
}


#: Every key a config file, `REFLEX_<KEY>` or a CLI override may set.
KNOWN_KEYS: Final = frozenset(_KEYS)


# --- where a value came from, for messages --------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Origin:
    kind: str  # "file", "env", "cli"
    source: str = ""  # file name as shown to the user
    line: int | None = None


@dataclass(slots=True)
class _Raw:
    text: str
    origin: _Origin


def _describe(key: str, raw: _Raw) -> str:
    """`config.ini:3: interval = 'ten'`, `REFLEX_INTERVAL='ten'` or `--interval 'ten'`."""
    shown = "<hidden>" if _KEYS[key].secret else repr(_clip(raw.text))
    origin = raw.origin
    if origin.kind == "env":
        return f"{ENV_PREFIX}{key.upper()}={shown}"
    if origin.kind == "cli":
        return f"--{key.replace('_', '-')} {shown}"
    return f"{origin.source}:{origin.line}: {key} = {shown}"


def _where(key: str, raw: _Raw) -> str:
    """Just the place: `config.ini:3`, `REFLEX_PUB` or `--pub`."""
    origin = raw.origin
    if origin.kind == "env":
        return ENV_PREFIX + key.upper()
    if origin.kind == "cli":
        return "--" + key.replace("_", "-")
    return f"{origin.source}:{origin.line}"


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# --- file reading ---------------------------------------------------------------------------
def _display_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _strip_value(text: str) -> str:
    """Unquote `"..."`/`'...'` (kept literally); otherwise drop a ` # comment`."""
    if len(text) >= 2 and text[0] in "\"'":
        end = text.find(text[0], 1)
        if end > 0 and (not text[end + 1 :].strip() or text[end + 1 :].lstrip()[0] in "#;"):
            return text[1:end]
    match = re.search(r"\s[#;]", text)
    return (text[: match.start()] if match else text).strip()


def _read_file(path: Path, shown: str) -> tuple[dict[str, _Raw], list[ConfigWarning]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None

    values: dict[str, _Raw] = {}
    warnings: list[ConfigWarning] = []
    in_our_section = True  # header-less lines (the seed's format) count as ours
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
            in_our_section = section == SECTION
            if not in_our_section:
                warnings.append(
                    ConfigWarning(
                        shown, number, f"section [{section}] is not used; its keys are ignored"
                    )
                )
            continue
        if not in_our_section:
            continue  # another tool's section: its syntax is not ours to judge
        if "=" not in stripped:
            raise ConfigError(
                f"{shown}:{number}: {_clip(stripped)!r}: expected a 'key = value' line"
            )
        key_text, _, value = stripped.partition("=")
        key = key_text.strip().lower()
        if not key:
            raise ConfigError(f"{shown}:{number}: expected a key before '='")
        if key not in _KEYS:
            warnings.append(ConfigWarning(shown, number, _unknown_key_message(key)))
            continue
        if key in values:
            first = values[key].origin.line
            warnings.append(
                ConfigWarning(
                    shown, number, f"'{key}' is set again (first on line {first}); last one wins"
                )
            )
        values[key] = _Raw(_strip_value(value.strip()), _Origin("file", shown, number))
    return values, warnings


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, _KEYS, n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{_clip(key)}'{hint}; ignored"


# --- locating the file ----------------------------------------------------------------------
def find_config_file(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_dir: Path | None = None,
) -> Path | None:
    """The config file to read, or None when there is none (defaults apply).

    A path given explicitly (`--config` or `$REFLEX_CONFIG`) must exist: a typo
    there silently falling back to defaults would be worse than an error.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    explicit: tuple[Path, str] | None = None
    if path is not None and str(path) != "":
        explicit = (Path(path), "--config")
    elif env.get(ENV_CONFIG):
        explicit = (Path(env[ENV_CONFIG]), ENV_CONFIG)
    if explicit is not None:
        candidate, named_by = explicit
        candidate = candidate.expanduser()
        if not candidate.is_absolute():
            candidate = cwd / candidate
        if not candidate.is_file():
            problem = "is a directory" if candidate.is_dir() else "does not exist"
            raise ConfigError(f"{named_by} {candidate}: {problem}")
        return candidate
    for candidate in (cwd / CONFIG_FILE_NAME, (user_dir or user_config_dir()) / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


# --- loading --------------------------------------------------------------------------------
def _override_text(value: object) -> str:
    """CLI overrides may arrive typed (argparse `type=int`); parse them like text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(item) for item in value)
    return str(value)


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    cwd: Path | None = None,
    user_dir: Path | None = None,
) -> LoadedConfig:
    """Build the `Config` (see the module docstring for the order).

    `env`, `cwd` and `user_dir` (the `<user config dir>/reflex` directory) default
    to the real process environment, working directory and platformdirs; tests
    pass their own. `overrides` maps key -> value from CLI flags (None values are
    skipped, so argparse defaults of None mean "not given"). Raises ConfigError.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    source = find_config_file(path, env=env, cwd=cwd, user_dir=user_dir)

    raw: dict[str, _Raw] = {}
    warnings: list[ConfigWarning] = []
    if source is not None:
        raw, warnings = _read_file(source, _display_path(source, cwd))
    for key in _KEYS:
        env_name = ENV_PREFIX + key.upper()
        if env_name in env:
            raw[key] = _Raw(env[env_name].strip(), _Origin("env"))
    for key, value in (overrides or {}).items():
        if key not in _KEYS:
            raise ConfigError(f"unknown setting '{key}'")
        if value is not None:
            raw[key] = _Raw(_override_text(value).strip(), _Origin("cli"))

    values: dict[str, Any] = {}
    for key, item in raw.items():
        if item.text == "":
            continue  # an empty value means "use the default"
        base = source.parent if item.origin.kind == "file" and source else cwd
        try:
            values[key] = _KEYS[key].parse(item.text, base)
        except _Bad as exc:
            expected = str(exc) or _KEYS[key].expected
            raise ConfigError(f"{_describe(key, item)}: expected {expected}") from None

    _apply_mode(values, raw)
    _check_channels(values, raw)
    config = Config(**values, source=source)
    return LoadedConfig(config, tuple(warnings))


def _is_placeholder(value: object) -> bool:
    return value is None or str(value).strip().lower() in KEY_PLACEHOLDERS


def _apply_mode(values: dict[str, Any], raw: Mapping[str, _Raw]) -> None:
    """Local mode when neither key is real: demo keys, the local hub, no TLS."""
    pub_real = not _is_placeholder(values.get("pub"))
    sub_real = not _is_placeholder(values.get("sub"))
    if pub_real != sub_real:
        present, missing = ("pub", "sub") if pub_real else ("sub", "pub")
        raise ConfigError(
            f"{_where(present, raw[present])}: {present} is set but {missing} is not: "
            "set both keys to use PubNub, or neither for the local hub"
        )
    values["local"] = not pub_real
    if values["local"]:
        values["pub"], values["sub"] = LOCAL_PUB_KEY, LOCAL_SUB_KEY
        values.setdefault("origin", LOCAL_ORIGIN)
        values.setdefault("ssl", False)
    else:
        values.setdefault("origin", "")  # empty: PubNub's own origin
        values.setdefault("ssl", True)


def _check_channels(values: Mapping[str, Any], raw: Mapping[str, _Raw]) -> None:
    """Commands, files and memberships on one channel would be read as each other."""
    chosen = {
        "config_chan": values.get("config_chan", DEFAULT_CONFIG_CHAN),
        "ignore_chan": values.get("ignore_chan", DEFAULT_IGNORE_CHAN),
        "channel": values.get("channel", DEFAULT_CHANNEL),
    }
    seen: dict[str, str] = {}
    for key, name in chosen.items():
        other = seen.get(name)
        if other is not None:
            # Blame the key the user set; defaults never collide with each other.
            culprit, partner = (key, other) if key in raw else (other, key)
            raise ConfigError(
                f"{_describe(culprit, raw[culprit])}: expected a channel other than {partner}'s"
                " (config_chan, ignore_chan and channel must all differ)"
            )
        seen[name] = key


def overrides_from_args(args: object) -> dict[str, object]:
    """CLI overrides from an argparse Namespace (or a mapping): attributes named like
    config keys (`--log-level` -> `log_level`), None (flag not given) skipped."""
    values: Mapping[str, object] = args if isinstance(args, Mapping) else vars(args)
    return {key: value for key, value in values.items() if key in KNOWN_KEYS and value is not None}


def load_config_or_exit(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    cwd: Path | None = None,
    user_dir: Path | None = None,
    prog: str = "reflex",
    stderr: TextIO | None = None,
) -> Config:
    """`load_config` for CLIs: warnings and the error go to stderr as single lines, and
    a ConfigError exits with status 2 (the usage-error code argparse also uses)."""
    out = sys.stderr if stderr is None else stderr
    try:
        loaded = load_config(path, env=env, overrides=overrides, cwd=cwd, user_dir=user_dir)
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=out)
        raise SystemExit(2) from None
    for warning in loaded.warnings:
        print(f"{prog}: config warning: {warning}", file=out)
    return loaded.config


__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_CONFIG_CHAN",
    "DEFAULT_IGNORE_CHAN",
    "DEFAULT_INTERVAL",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_PRESENCE_TIMEOUT",
    "DEFAULT_RESEND_AFTER_DAYS",
    "DEFAULT_SYNC_EVERY",
    "DEFAULT_TIMEOUT",
    "ENV_CONFIG",
    "KEY_PLACEHOLDERS",
    "KNOWN_KEYS",
    "LOCAL_ORIGIN",
    "LOCAL_PUB_KEY",
    "LOCAL_SUB_KEY",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "LoadedConfig",
    "find_config_file",
    "load_config",
    "load_config_or_exit",
    "overrides_from_args",
]
