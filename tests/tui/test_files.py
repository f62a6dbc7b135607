"""Upload through the file dialog, the scripts screen diff and its actions, and the
automatic re-send of old files, all against a real hub's File Sharing."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DirectoryTree, Input

from reflex_core.bus import Bus
from reflex_core.config import Config
from reflex_core.signing import (
    TrustPolicy,
    check_upload,
    default_key_path,
    load_or_create_key,
    public_key_text,
    send_signed,
    sign_upload,
)
from reflex_tui.app import make_app
from reflex_tui.dialogs.confirm import ConfirmDialog
from reflex_tui.dialogs.upload import UploadDialog
from reflex_tui.screens.dashboard import DashboardScreen
from reflex_tui.screens.scripts import ScriptsScreen
from reflex_tui.script_sync import SyncStatus

from .support import ManualClock, ready, wait_for

pytestmark = pytest.mark.timeout(60)

SIZE = (100, 40)
SCRIPT = b'#!/bin/sh\necho "NEW OK - 1 thing | things=1"\n'


async def remote_names(bus: Bus, channel: str) -> list[str]:
    return sorted(info.name for info in await bus.list_files(channel))


def error_shows(dialog: UploadDialog, text: str) -> bool:
    return text in str(dialog.query_one("#error").render())


async def open_upload(pilot: Any, app: Any, root: Path) -> UploadDialog:
    await pilot.press("u")
    await wait_for(pilot, lambda: isinstance(app.screen, UploadDialog))
    dialog = app.screen
    assert isinstance(dialog, UploadDialog)
    root_input = dialog.query_one("#root", Input)
    root_input.focus()
    root_input.value = str(root)
    await pilot.press("enter")  # re-root the browser there
    tree = dialog.query_one(DirectoryTree)
    await wait_for(pilot, lambda: Path(tree.path) == root and tree.root.children, what="tree")
    return dialog


async def test_upload_through_dialog_ends_on_config_chan(
    dashboard_bus: Bus, make_bus: Any, tui_config: Config, tmp_path: Path, scripts_dir: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "newcheck.sh").write_bytes(SCRIPT)
    (elsewhere / "README.txt").write_text("not a script")
    (elsewhere / ".hidden.sh").write_text("hidden")
    observer = await make_bus("observer")
    app = make_app(tui_config, bus=dashboard_bus, resend_check_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        dialog = await open_upload(pilot, app, elsewhere)
        tree = dialog.query_one(DirectoryTree)
        assert [str(node.label) for node in tree.root.children] == ["newcheck.sh"]
        await pilot.press("down")  # highlight the file: it is chosen and previewed
        await wait_for(pilot, lambda: dialog.chosen_size == len(SCRIPT), what="preview")
        assert "NEW OK" in dialog.preview_text
        assert not dialog.query_one("#upload", Button).disabled
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dismiss")
        assert await remote_names(observer, tui_config.config_chan) == [
            "newcheck.sh",
            "newcheck.sh.sig",
        ]
        files = {f.name: f for f in await observer.list_files(tui_config.config_chan)}
        chan = tui_config.config_chan
        data = await observer.download_file(chan, files["newcheck.sh"].id, "newcheck.sh")
        assert data == SCRIPT
        # Signed by the operator key (created on first upload, owner-only), sidecar too.
        key_file = tui_config.signing_key
        assert key_file is not None and key_file.stat().st_mode & 0o777 == 0o600
        trusted = public_key_text(load_or_create_key(key_file).public_key())
        sidecar = await observer.download_file(chan, files["newcheck.sh.sig"].id, "newcheck.sh.sig")
        verdict = check_upload([sidecar], "newcheck.sh", data, TrustPolicy((trusted,)))
        assert verdict.key == trusted and verdict.version
        assert (scripts_dir / "newcheck.sh").read_bytes() == SCRIPT
        assert any("Uploaded newcheck.sh" in str(n.message) for n in app._notifications)


async def test_upload_refuses_names_and_sizes_agents_refuse(
    dashboard_bus: Bus, make_bus: Any, tui_config: Config, tmp_path: Path, scripts_dir: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a,b.sh").write_bytes(SCRIPT)
    (bad / "huge.py").write_bytes(b"#" * (5 * 1024 * 1024 + 1))
    observer = await make_bus("observer")
    app = make_app(tui_config, bus=dashboard_bus, resend_check_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        dialog = await open_upload(pilot, app, bad)
        for name, reason in (("a,b.sh", "bad name"), ("huge.py", "too large")):
            dialog.choose(bad / name)
            await wait_for(pilot, partial(error_shows, dialog, reason), what=reason)
            assert dialog.query_one("#upload", Button).disabled
            dialog.action_upload()  # even forced, nothing is sent
            await pilot.pause()
        assert isinstance(app.screen, UploadDialog)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert await remote_names(observer, tui_config.config_chan) == []
        assert await asyncio.to_thread(lambda: list(scripts_dir.iterdir())) == []


async def test_scripts_screen_diff_upload_missing_and_resend_all(
    dashboard_bus: Bus, make_bus: Any, tui_config: Config, scripts_dir: Path
) -> None:
    channel = tui_config.config_chan
    other = await make_bus("other-dashboard")
    (scripts_dir / "local_only.py").write_bytes(b"print('a')\n")
    (scripts_dir / "same.sh").write_bytes(b"echo same\n")
    (scripts_dir / "differs.py").write_bytes(b"print('new')\n")
    (scripts_dir / "notes.txt").write_bytes(b"ignored\n")
    await other.send_file(channel, "same.sh", b"echo same\n")
    await other.send_file(channel, "differs.py", b"print('old')\n")  # same size, other bytes
    # Remote-only bytes are re-sent with their own signature, so this operator signed them.
    key = load_or_create_key(default_key_path(tui_config))
    await send_signed(
        other, channel, sign_upload(key, "remote_only.sh", b"echo remote\n", version=1)
    )
    app = make_app(tui_config, bus=dashboard_bus, resend_check_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ScriptsScreen))
        scripts = app.screen
        assert isinstance(scripts, ScriptsScreen)

        def statuses() -> dict[str, SyncStatus]:
            return {row.name: row.status for row in scripts.rows}

        await wait_for(pilot, lambda: len(statuses()) == 4, what="compare")
        assert statuses() == {
            "differs.py": SyncStatus.DIFFERS,
            "local_only.py": SyncStatus.LOCAL_ONLY,
            "remote_only.sh": SyncStatus.REMOTE_ONLY,
            "same.sh": SyncStatus.SAME,
        }
        await pilot.press("m")  # upload the missing and differing ones
        await wait_for(
            pilot,
            lambda: (
                statuses().get("local_only.py") is SyncStatus.SAME
                and statuses().get("differs.py") is SyncStatus.SAME
            ),
            what="uploaded",
        )
        assert statuses()["remote_only.sh"] is SyncStatus.REMOTE_ONLY
        before = len(await other.list_files(channel))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: any("Sent 4 script(s)" in str(n.message) for n in app._notifications),
            what="re-sent",
        )
        assert len(await other.list_files(channel)) == before + 8  # 4 scripts + 4 sidecars
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_files_older_than_resend_after_are_sent_again(
    make_bus: Any, tui_config: Config
) -> None:
    """Old files are re-sent with the signature they already carry, never re-signed.

    A file this operator key did not sign (here: an unsigned upload by someone else)
    is skipped: re-signing it would vouch for an attacker's bytes.
    """
    channel = tui_config.config_chan
    other = await make_bus("other-dashboard")
    key = load_or_create_key(default_key_path(tui_config))
    original = sign_upload(key, "old.sh", b"echo old\n", version=1_000)
    await send_signed(other, channel, original)
    await other.send_file(channel, "planted.sh", b"echo pwned\n")
    clock = ManualClock()
    clock.advance(21 * 86_400)  # 21 days later: older than resend_after (20 days)
    app = make_app(tui_config, bus=await make_bus("reflex-tui.test"), clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot,
            lambda: (
                len([1 for n in app._notifications if "Re-sent 1 script" in str(n.message)]) == 1
            ),
            what="auto re-send",
        )
    names = sorted(f.name for f in await other.list_files(channel))
    assert names == ["old.sh", "old.sh", "old.sh.sig", "old.sh.sig", "planted.sh"]
    files = [f for f in await other.list_files(channel) if f.name == "old.sh"]
    newest = max(files, key=lambda f: f.created)
    assert await other.download_file(channel, newest.id, "old.sh") == b"echo old\n"
    sigs = [f for f in await other.list_files(channel) if f.name == "old.sh.sig"]
    for sig in sigs:  # both sidecars carry the original version: no re-signing
        document = await other.download_file(channel, sig.id, sig.name)
        assert b'"version":1000' in document


async def test_failed_worker_becomes_a_notification(
    hub: Any, dashboard_bus: Bus, tui_config: Config
) -> None:
    """A worker started by a screen fails: the app's one handler tells the operator."""
    app = make_app(tui_config, bus=dashboard_bus, resend_check_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ScriptsScreen))
        await hub.stop()
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any("compare scripts failed" in str(n.message) for n in app._notifications),
            what="error notification",
        )
        assert isinstance(app.screen, ScriptsScreen)  # still running, nothing crashed
