"""Names on the wire: device ids, device channels and test names.

A device id is at once the agent's PubNub `user_id`, its member id on the
membership channel and the suffix of `device.<id>`, so it must satisfy PubNub's
rules for all three; a test name travels in the comma-joined `custom.ignore`
string and is shown in a terminal. Keeping both rules here means the agent,
the dashboard and the protocol parser cannot drift apart.

Everything here is re-exported by `reflex_core.protocol`; import it from there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from pathlib import PurePath
from typing import Final

MAX_DEVICE_ID_CHARS: Final = 64  # PubNub allows 92 for user ids and channel names
MAX_TEST_NAME_CHARS: Final = 64
MAX_IGNORE_NAMES: Final = 256
#: Non-ASCII names travel as \uXXXX escapes, so a list is bounded in bytes as well
#: as in count: a full list must always fit in one message.
MAX_IGNORE_BYTES: Final = 20 * 1024

DEVICE_CHANNEL_PREFIX: Final = "device."
DEVICE_WILDCARD: Final = "device.*"
#: Command target meaning "every device".
ALL_DEVICES: Final = "*"

_DEVICE_ID_RE: Final = re.compile(rf"[a-z0-9_-]{{1,{MAX_DEVICE_ID_CHARS}}}")
_DEVICE_ID_BAD_CHARS: Final = re.compile(r"[^a-z0-9_-]")


class ProtocolError(ValueError):
    """Anything malformed on the wire. The message is a short, loggable reason.

    Defined in this lowest-level module so name checks can raise it; use it as
    `reflex_core.protocol.ProtocolError`.
    """


def short_repr(value: object) -> str:
    """Describe a bad value in an error message without echoing a huge payload."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return type(value).__name__


# --- device ids ----------------------------------------------------------------------------
def device_id(name: str) -> str:
    """Device id for a host name: lowercase, every char outside `[a-z0-9_-]` -> `-`
    (`web1.example.com` -> `web1-example-com`).

    Ids that would exceed 64 chars keep a prefix plus 8 hex digits of a hash of
    the full name, so long FQDNs stay valid and distinct. Idempotent:
    `device_id(device_id(x)) == device_id(x)`, so a legacy command naming a host
    either by name or by id reaches the same device.
    """
    if type(name) is not str or not name.strip():
        raise ProtocolError("device name is empty")
    lowered = name.strip().lower()
    ident = _DEVICE_ID_BAD_CHARS.sub("-", lowered)
    if len(ident) > MAX_DEVICE_ID_CHARS:
        digest = hashlib.sha256(lowered.encode("utf-8", "replace")).hexdigest()[:8]
        ident = f"{ident[: MAX_DEVICE_ID_CHARS - 9]}-{digest}"
    return ident


def is_device_id(value: object) -> bool:
    return type(value) is str and _DEVICE_ID_RE.fullmatch(value) is not None


def device_channel(ident: str) -> str:
    """`device.<id>`: the only channel an agent publishes to."""
    if not is_device_id(ident):
        raise ProtocolError(f"not a device id: {short_repr(ident)}")
    return DEVICE_CHANNEL_PREFIX + ident


def device_id_from_channel(channel: str) -> str | None:
    """The id in `device.<id>`, or None. Results are attributed by channel, never by
    what the payload claims."""
    if type(channel) is not str or not channel.startswith(DEVICE_CHANNEL_PREFIX):
        return None
    ident = channel[len(DEVICE_CHANNEL_PREFIX) :]
    return ident if is_device_id(ident) else None


# --- test names ----------------------------------------------------------------------------
def test_name_problem(name: str) -> str | None:
    """Why `name` is not a valid (already lowercased) test name, or None if it is.

    No commas (the `custom.ignore` separator), no slashes, no control characters
    (terminal safety), no leading dot (dotfiles are never scripts).
    """
    if not name:
        return "is empty"
    if len(name) > MAX_TEST_NAME_CHARS:
        return f"is longer than {MAX_TEST_NAME_CHARS} characters"
    if name != name.strip():
        return "has leading or trailing spaces"
    if name.startswith("."):
        return "starts with '.'"
    for char in name:
        if char in ",/\\":
            return f"contains {char!r}"
        if unicodedata.category(char)[0] == "C" or (char.isspace() and char != " "):
            return "contains a control character"
    return None


def normalize_test_name(name: object) -> str:
    """Lowercase and validate a test name (ignore matching is case-insensitive)."""
    if type(name) is not str:
        raise ProtocolError(f"test name: expected a string, got {short_repr(name)}")
    if len(name) > 4 * MAX_TEST_NAME_CHARS:  # bound the work before lowercasing
        raise ProtocolError(f"test name is longer than {MAX_TEST_NAME_CHARS} characters")
    lowered, problem = _lowered_and_problem(name)
    if problem:
        raise ProtocolError(f"test name {short_repr(name)} {problem}")
    return lowered


@functools.lru_cache(maxsize=4096)
def _lowered_and_problem(name: str) -> tuple[str, str | None]:
    """A fleet repeats the same few dozen test names in every result; checking each one
    character by character was a tenth of the dashboard's backfill parse (cProfile of
    `Ingest.history` over 7,200 stored rounds). Bounded, so hostile names only evict."""
    lowered = name.lower()
    return lowered, _cached_problem(lowered)


_cached_problem = functools.lru_cache(maxsize=4096)(test_name_problem)


def is_test_name(name: object) -> bool:
    """True for a valid, already-lowercase test name."""
    return type(name) is str and _cached_problem(name) is None


def test_name(path: str | PurePath) -> str:
    """Test name of a script: its file stem, lowercased (`Disk.sh` -> `disk`).

    Raises ProtocolError when the stem is not a usable test name (`a,b.py`); the
    agent reports such a file in `state.rejected` as a bad name.
    """
    return normalize_test_name(PurePath(path).stem)


# Not pytest tests, whatever their names say: keep pytest from collecting them in
# test modules that import them by name.
test_name.__test__ = False  # type: ignore[attr-defined]
test_name_problem.__test__ = False  # type: ignore[attr-defined]


def normalize_ignore_list(names: object, where: str = "ignore") -> tuple[str, ...]:
    """Validate a list of test names: lowercased, de-duplicated and sorted, so two
    lists naming the same tests compare equal."""
    if not isinstance(names, list | tuple):
        raise ProtocolError(f"{where}: expected a list, got {short_repr(names)}")
    if len(names) > MAX_IGNORE_NAMES:
        raise ProtocolError(f"{where}: more than {MAX_IGNORE_NAMES} entries")
    normalized: set[str] = set()
    for index, name in enumerate(names):
        try:
            normalized.add(normalize_test_name(name))
        except ProtocolError as exc:
            raise ProtocolError(f"{where}[{index}]: {exc}") from None
    if sum(len(json.dumps(name)) + 2 for name in normalized) > MAX_IGNORE_BYTES:
        raise ProtocolError(f"{where}: larger than {MAX_IGNORE_BYTES} bytes")
    return tuple(sorted(normalized))


def split_names(text: str, where: str = "ignore") -> tuple[str, ...]:
    """Parse the seed's comma-separated form (`"CPU, disk"`; empty means none)."""
    if len(text) > MAX_IGNORE_NAMES * (4 * MAX_TEST_NAME_CHARS + 2):
        raise ProtocolError(f"{where}: too long")
    names = [part.strip() for part in text.split(",")]
    return normalize_ignore_list([name for name in names if name], where)


__all__ = [
    "ALL_DEVICES",
    "DEVICE_CHANNEL_PREFIX",
    "DEVICE_WILDCARD",
    "MAX_DEVICE_ID_CHARS",
    "MAX_IGNORE_BYTES",
    "MAX_IGNORE_NAMES",
    "MAX_TEST_NAME_CHARS",
    "ProtocolError",
    "device_channel",
    "device_id",
    "device_id_from_channel",
    "is_device_id",
    "is_test_name",
    "normalize_ignore_list",
    "normalize_test_name",
    "short_repr",
    "split_names",
    "test_name",
    "test_name_problem",
]
