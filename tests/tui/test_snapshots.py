"""Snapshots of every main screen with fixed data and a frozen clock (no network).

Update after an intended visual change with
`pytest tests/tui/test_snapshots.py --snapshot-update`, then look at the report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DirectoryTree

from reflex_core.config import Config
from reflex_core.events import FileInfo
from reflex_tui.app import ReflexApp, make_app
from reflex_tui.dialogs.upload import UploadDialog
from reflex_tui.screens.scripts import ScriptsScreen
from reflex_tui.script_sync import LocalScript, compare

from .fixed_fleet import NOW, FrozenClock, build_fleet
from .support import select, wait_for

pytestmark = pytest.mark.timeout(60)

SMALL = (80, 24)
LARGE = (160, 48)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a temp dir with a relative `scripts` dir, so no absolute temp path (which
    differs on every run) ever appears on screen."""
    monkeypatch.chdir(tmp_path)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "cpu.py").write_text(
        '#!/usr/bin/env python3\n"""CPU check."""\nprint("CPU OK - 12% used | cpu=12%;80;95")\n'
    )
    (scripts / "disk.sh").write_text('#!/bin/sh\necho "DISK OK - 35% used | disk=35%;80;90"\n')
    (scripts / "notes.txt").write_text("not a script\n")
    for path in scripts.iterdir():
        stamp = NOW - 86_400
        import os

        os.utime(path, (stamp, stamp))
    return tmp_path


def fixed_app(**config: Any) -> ReflexApp:
    clock = FrozenClock()
    return make_app(
        Config(scripts=Path("scripts"), **config),
        fleet=build_fleet(clock),
        clock=clock,
        connect=False,
    )


class TestDashboard:
    @pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
    def test_tiles(self, snap_compare: Any, workdir: Path, size: tuple[int, int]) -> None:
        assert snap_compare(fixed_app(), terminal_size=size)

    @pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
    def test_list(self, snap_compare: Any, workdir: Path, size: tuple[int, int]) -> None:
        async def expand_web1(pilot: Pilot[Any]) -> None:
            await pilot.press("v")
            await select(pilot, "web1-example-com", "disk")

        assert snap_compare(fixed_app(), terminal_size=size, run_before=expand_web1)

    def test_cursor_on_disabled_test(self, snap_compare: Any, workdir: Path) -> None:
        """The cursor can rest on a name in the Disabled line (to re-enable it)."""

        async def to_swap(pilot: Pilot[Any]) -> None:
            await select(pilot, "web1-example-com", "swap")

        assert snap_compare(fixed_app(), terminal_size=LARGE, run_before=to_swap)


class TestScreens:
    def test_detail(self, snap_compare: Any, workdir: Path) -> None:
        async def open_detail(pilot: Pilot[Any]) -> None:
            await select(pilot, "web1-example-com", "memory")
            await pilot.press("enter")

        assert snap_compare(fixed_app(), terminal_size=(100, 30), run_before=open_detail)

    def test_help(self, snap_compare: Any, workdir: Path) -> None:
        assert snap_compare(fixed_app(), terminal_size=(100, 40), press=["question_mark"])

    def test_scripts(self, snap_compare: Any, workdir: Path) -> None:
        async def show(pilot: Pilot[Any]) -> None:
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ScriptsScreen))
            screen = pilot.app.screen
            assert isinstance(screen, ScriptsScreen)
            local = [
                LocalScript("cpu.py", Path("scripts/cpu.py"), 80, NOW - 86_400, "a" * 64),
                LocalScript("disk.sh", Path("scripts/disk.sh"), 60, NOW - 3_600, "b" * 64),
                LocalScript("load.py", Path("scripts/load.py"), 120, NOW - 7_200, "c" * 64),
            ]
            remote = [
                FileInfo("f1", "cpu.py", 80, "2023-11-13T22:13:20Z"),
                FileInfo("f2", "disk.sh", 64, "2023-11-01T08:00:00Z"),
                FileInfo("f3", "legacy.sh", 300, "2023-10-20T10:30:00Z"),
            ]
            screen.show_rows(compare(local, remote, {"f1": "a" * 64}))
            await pilot.pause()

        assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=show)


class TestDialogs:
    def test_delete_confirmation(self, snap_compare: Any, workdir: Path) -> None:
        async def delete_web1(pilot: Pilot[Any]) -> None:
            await select(pilot, "web1-example-com")
            await pilot.press("d")

        assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=delete_web1)

    def test_interval(self, snap_compare: Any, workdir: Path) -> None:
        async def interval_db(pilot: Pilot[Any]) -> None:
            await select(pilot, "db-1")
            await pilot.press("t")

        assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=interval_db)

    def test_upload(self, snap_compare: Any, workdir: Path) -> None:
        cpu_script = (workdir / "scripts" / "cpu.py").resolve()

        async def pick_cpu(pilot: Pilot[Any]) -> None:
            await pilot.press("u")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, UploadDialog))
            dialog = pilot.app.screen
            assert isinstance(dialog, UploadDialog)
            tree = dialog.query_one(DirectoryTree)
            await wait_for(pilot, lambda: len(tree.root.children) == 2, what="tree loaded")
            dialog.choose(cpu_script)
            await wait_for(pilot, lambda: dialog.chosen_size > 0, what="preview")
            await pilot.pause()

        assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=pick_cpu)


def test_frozen_clock_is_used() -> None:
    """Snapshots depend on it: the fixed fleet never reads the real clock."""
    fleet = build_fleet()
    assert fleet.clock() == NOW != time.time()
