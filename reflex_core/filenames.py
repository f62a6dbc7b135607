"""Which script file names may travel over the network.

Script distribution is remote code execution on every host, so the agent
refuses any name that could escape the scripts dir, hide itself, or become
executable by a route other than its interpreter. The dashboard applies the
same rule before uploading, so an operator learns at once why a file would be
refused. One function, used by both sides.
"""

from __future__ import annotations

from reflex_core.ids import test_name_problem

MAX_SCRIPT_BYTES = 5 * 1024 * 1024
"""PubNub File Sharing's own cap; larger files are refused on both sides."""

MAX_NAME_BYTES = 255
ALLOWED_SUFFIXES = (".py", ".sh")


def script_name_problem(name: object) -> str | None:
    """Why ``name`` is not acceptable as a received script, or None if it is."""
    if not isinstance(name, str) or not name:
        return "bad name: empty"
    if "\x00" in name:
        return "bad name: contains NUL"
    if "/" in name or "\\" in name:
        return "bad name: contains a path separator"
    if ".." in name:
        return "bad name: contains '..'"
    if name.startswith("."):
        return "bad name: hidden file"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"bad name: longer than {MAX_NAME_BYTES} bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "bad name: contains control characters"
    if not name.endswith(ALLOWED_SUFFIXES) or name in ALLOWED_SUFFIXES:
        return "bad name: only .py and .sh scripts are accepted"
    stem_problem = test_name_problem(name.rsplit(".", 1)[0].lower())
    if stem_problem is not None:
        return f"bad name: {stem_problem}"
    return None


def script_size_problem(size: int) -> str | None:
    """Why a file of ``size`` bytes is refused, or None."""
    if size > MAX_SCRIPT_BYTES:
        return f"too large: {size} bytes (limit {MAX_SCRIPT_BYTES})"
    return None
