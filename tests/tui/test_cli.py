"""`reflex-tui --help`, config errors, `--show-key`, the embedded local hub and the demo's
environment, without starting the UI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reflex_core.config import Config
from reflex_core.signing import load_or_create_key, public_key_text
from reflex_tui.cli import build_parser, main
from reflex_tui.demo import Demo, free_port, hub_answers, maybe_embed_local_hub


def test_help_lists_config_option() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reflex_tui.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert "--config FILE" in proc.stdout and "reflex-tui" in proc.stdout


def test_missing_config_file_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", "/nonexistent/reflex.ini"])
    assert exc.value.code == 2
    assert "reflex-tui: config error: --config /nonexistent/reflex.ini" in capsys.readouterr().err


def test_parser_defaults() -> None:
    assert build_parser().parse_args([]).config is None


def test_show_key_creates_key_and_prints_trust_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in [k for k in os.environ if k.startswith("REFLEX_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    key_file = tmp_path / "op.key"
    monkeypatch.setenv("REFLEX_SIGNING_KEY", str(key_file))
    assert main(["--show-key"]) == 0
    public = public_key_text(load_or_create_key(key_file).public_key())
    out = capsys.readouterr().out
    assert f"trusted_keys = {public}" in out
    assert f"reflex-agent trust {public}" in out
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert main(["--show-key"]) == 0  # the same key the second time
    assert f"trusted_keys = {public}" in capsys.readouterr().out


async def test_embedded_local_hub_only_when_nothing_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    port = free_port()
    config = Config(origin=f"127.0.0.1:{port}", local=True)
    assert not await asyncio.to_thread(hub_answers, config.hub_url or "")
    hub = await asyncio.to_thread(maybe_embed_local_hub, config)
    assert hub is not None
    try:
        assert await asyncio.to_thread(hub_answers, config.hub_url or "")
        assert (tmp_path / "data" / "reflex" / "hub" / "hub.sqlite3").exists()  # persistent
        # A second dashboard finds the hub running and uses it.
        assert await asyncio.to_thread(maybe_embed_local_hub, config) is None
    finally:
        await asyncio.to_thread(hub.stop)
    assert not await asyncio.to_thread(hub_answers, config.hub_url or "")
    # Not in local mode, or not on loopback: never.
    remote = Config(origin=f"192.0.2.1:{port}", local=True)
    assert await asyncio.to_thread(maybe_embed_local_hub, remote) is None


def test_demo_cleans_up_agent_hub_and_temp_dir() -> None:
    """Start the demo's environment, then close it: nothing may be left behind."""
    demo = Demo()
    config = demo.start()
    agent, root = demo.agent, demo.root
    try:
        assert agent is not None and root is not None
        assert agent.poll() is None
        assert config.signing_key is not None and config.signing_key.is_file()
        # The dashboard signs with the very key the demo agent trusts.
        signer = load_or_create_key(config.signing_key).public_key()
        assert public_key_text(signer) == demo.public_key
        assert (root / "agent" / "scripts").is_dir() and any((root / "scripts").iterdir())
        assert f"trusted_keys = {demo.public_key}" in (root / "agent" / "config.ini").read_text()
        assert hub_answers(config.hub_url or "")
    finally:
        demo.close()
    assert agent.poll() is not None
    assert not root.exists()
    assert not hub_answers(config.hub_url or "")


async def test_header_says_when_the_local_hub_is_embedded() -> None:
    from reflex_tui.app import make_app
    from reflex_tui.widgets.status_bar import StatusBar

    app = make_app(Config(origin="127.0.0.1:8787", local=True), connect=False)
    app.fleet.hub_embedded = True
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        header = app.dashboard.query_one(StatusBar).plain
    assert "local hub at http://127.0.0.1:8787 (embedded)" in header
