"""The script watcher reports one change per save, whatever the editor did."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from reflex_agent.watcher import ScriptWatcher

WAIT = 10.0


@pytest.fixture
async def watched(tmp_path: Path):
    events: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()

    async def on_change(path: Path, exists: bool) -> None:
        await events.put((path.name, exists))

    watcher = ScriptWatcher(tmp_path, on_change, debounce=0.1)
    watcher.start()
    try:
        yield tmp_path, events
    finally:
        await watcher.stop()


async def _next(events: asyncio.Queue[tuple[str, bool]]) -> tuple[str, bool]:
    return await asyncio.wait_for(events.get(), WAIT)


async def _drain_until_sentinel(
    directory: Path, events: asyncio.Queue[tuple[str, bool]]
) -> list[tuple[str, bool]]:
    """Everything reported before a later sentinel save.

    Timers fire in the order their quiet periods end, so any duplicate report
    caused by earlier events arrives before the sentinel's.
    """
    (directory / "sentinel.sh").write_text("echo 1\n")
    seen = []
    while True:
        item = await _next(events)
        if item[0] == "sentinel.sh":
            return seen
        seen.append(item)


async def test_create_and_modify_reported(watched) -> None:
    directory, events = watched
    (directory / "a.sh").write_text("echo 1\n")
    assert await _next(events) == ("a.sh", True)
    (directory / "a.sh").write_text("echo 2\n")
    assert await _next(events) == ("a.sh", True)


async def test_double_write_is_one_change(watched) -> None:
    directory, events = watched
    target = directory / "b.sh"
    with target.open("w") as fh:
        fh.write("echo 1\n")
        fh.flush()
        os.fsync(fh.fileno())
        fh.write("echo 2\n")
    target.write_text("echo 3\n")
    assert await _next(events) == ("b.sh", True)
    assert await _drain_until_sentinel(directory, events) == []


async def test_rename_save_is_one_change(watched) -> None:
    directory, events = watched
    target = directory / "c.py"
    target.write_text("print(1)\n")
    assert await _next(events) == ("c.py", True)
    # vim/emacs style: write a temp file, then rename it over the original.
    tmp = directory / ".c.py.swp"
    tmp.write_text("print(2)\n")
    os.replace(tmp, target)
    seen = [await _next(events), *await _drain_until_sentinel(directory, events)]
    assert [s for s in seen if s[0] == "c.py"] == [("c.py", True)]


async def test_delete_reported(watched) -> None:
    directory, events = watched
    target = directory / "d.sh"
    target.write_text("echo 1\n")
    assert await _next(events) == ("d.sh", True)
    target.unlink()
    assert await _next(events) == ("d.sh", False)


async def test_handler_failure_does_not_stop_watching(tmp_path: Path) -> None:
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def on_change(path: Path, exists: bool) -> None:
        await seen.put(path.name)
        if path.name == "boom.sh":
            raise RuntimeError("handler bug")

    watcher = ScriptWatcher(tmp_path, on_change, debounce=0.05)
    watcher.start()
    try:
        (tmp_path / "boom.sh").write_text("x")
        assert await asyncio.wait_for(seen.get(), WAIT) == "boom.sh"
        (tmp_path / "ok.sh").write_text("x")
        assert await asyncio.wait_for(seen.get(), WAIT) == "ok.sh"
    finally:
        await watcher.stop()
