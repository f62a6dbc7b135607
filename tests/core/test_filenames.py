"""Hostile script names are refused with a reason; ordinary ones pass."""

from __future__ import annotations

import pytest

from reflex_core.filenames import MAX_SCRIPT_BYTES, script_name_problem, script_size_problem


@pytest.mark.parametrize(
    "name",
    [
        "../x.py",
        "/etc/cron.d/x.sh",
        "a/b.py",
        "a\\b.py",
        "x\x00.py",
        "a" * 300 + ".py",
        ".hidden.py",
        "x.exe",
        "",
        ".py",
        "tab\t.sh",
        "README",
        "a,b.py",
        None,
    ],
)
def test_refused(name: object) -> None:
    problem = script_name_problem(name)
    assert problem is not None and problem.startswith("bad name")


@pytest.mark.parametrize("name", ["cpu.py", "check_disk.sh", "Ünïcode-ok.py", "a.b.py"])
def test_accepted(name: str) -> None:
    assert script_name_problem(name) is None


def test_size() -> None:
    assert script_size_problem(MAX_SCRIPT_BYTES) is None
    assert "too large" in (script_size_problem(6 * 1024 * 1024) or "")
