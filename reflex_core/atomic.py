"""Whole-file writes: a reader (or the agent's script watcher) never sees half a file.

Shared by the agent (received scripts, its state file, its config) and the dashboard
(a script copied into the operator's scripts directory before upload). The temp name
is `.reflex-*.part`, which the agent's script discovery never takes for a check, so a
write into a watched scripts directory cannot start a half-written script.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".reflex-"
TEMP_SUFFIX = ".part"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` with permission bits `mode`, all at once or not at all.

    The temp file lives in the same directory so ``os.replace`` is a rename on one file
    system, never a copy; it is fsynced first so a crash leaves the old or the new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
