"""`reflex-tui --help` and config errors, without starting the UI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reflex_tui.cli import build_parser, main


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
