"""The agent's local memory of what the operator told it.

App Context is the source of truth for a device's ignore list and interval,
but an agent must start correctly while the network is down. So every change
is also written here, atomically, and read back as the fallback at start.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from reflex_core.atomic import atomic_write

__all__ = ["LocalState", "StateStore", "atomic_write"]

log = logging.getLogger(__name__)


@dataclass
class LocalState:
    """What survives a restart of the agent even without the network."""

    ignored: list[str] | None = None
    interval: int | None = None
    # Upload version of each script received from the network, by file name,
    # so a restart still refuses to roll back to an older upload.
    versions: dict[str, int] = field(default_factory=dict)
    # What each file in received/ was when the agent verified it: {"sha256", "key"} by file
    # name (key "" when it ran unsigned under allow_unsigned_scripts). A received file that
    # matches no record here, or whose key is no longer trusted, does not run.
    received: dict[str, dict[str, str]] = field(default_factory=dict)


_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class StateStore:
    """A JSON file per device id in the user state dir."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> LocalState:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return LocalState()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable state file %s: %s", self.path, exc)
            return LocalState()
        state = LocalState()
        if not isinstance(raw, dict):
            return state
        ignored = raw.get("ignored")
        if isinstance(ignored, list) and all(isinstance(x, str) for x in ignored):
            state.ignored = list(ignored)
        interval = raw.get("interval")
        if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
            state.interval = interval
        versions = raw.get("versions")
        if isinstance(versions, dict):
            state.versions = {
                str(k): v
                for k, v in versions.items()
                if isinstance(v, int) and not isinstance(v, bool)
            }
        received = raw.get("received")
        if isinstance(received, dict):
            state.received = {
                str(name): {"sha256": entry["sha256"], "key": entry["key"]}
                for name, entry in received.items()
                if isinstance(entry, dict)
                and isinstance(entry.get("sha256"), str)
                and _SHA256_RE.fullmatch(entry["sha256"])
                and isinstance(entry.get("key"), str)
            }
        return state

    def save(self, state: LocalState) -> None:
        body = {
            "ignored": state.ignored,
            "interval": state.interval,
            "versions": state.versions,
            "received": state.received,
        }
        atomic_write(self.path, json.dumps(body, indent=1).encode(), mode=0o600)
