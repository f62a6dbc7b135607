"""Which files are checks, their test names, and deterministic conflict resolution."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from reflex_agent.discovery import (
    ATOMIC_TEMP_PREFIX,
    ATOMIC_TEMP_SUFFIX,
    Conflict,
    Script,
    discover,
    is_candidate_name,
    is_check_file,
    is_temp_name,
    scan,
    script_test_name,
)

REPO_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def make(directory: Path, name: str, mode: int = 0o644, body: str = "echo hi\n") -> Path:
    path = directory / name
    path.write_text(body)
    os.chmod(path, mode)
    return path


def test_scan_picks_checks_and_skips_the_rest(tmp_path: Path) -> None:
    make(tmp_path, "cpu.py")
    make(tmp_path, "disk.sh")
    make(tmp_path, "check_http", 0o755)
    make(tmp_path, "owner_only_x", 0o744)
    make(tmp_path, "notes.txt")  # not a script, no exec bit
    make(tmp_path, "data", 0o644)
    make(tmp_path, "README.md")
    make(tmp_path, "README", 0o755)
    make(tmp_path, "readme.sh")
    make(tmp_path, ".hidden.py")
    make(tmp_path, "cpu.py~")
    make(tmp_path, ".cpu.py.swp")
    make(tmp_path, "x.swp", 0o755)
    make(tmp_path, "x.tmp", 0o755)
    make(tmp_path, "new.py.part")
    make(tmp_path, "mem.py.bak", 0o755)
    make(tmp_path, "old.sh.disabled", 0o755)
    make(tmp_path, "#autosave.py#")
    make(tmp_path, "4913", 0o755)
    make(tmp_path, ".reflex-abc123.part", 0o755)
    (tmp_path / "sub.py").mkdir()  # a directory, even with a script-like name
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "link.sh").symlink_to(tmp_path / "disk.sh")  # a symlink to a script counts
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")

    result = scan(tmp_path)
    assert result.scripts == [
        Script("check_http", tmp_path / "check_http"),
        Script("cpu", tmp_path / "cpu.py"),
        Script("disk", tmp_path / "disk.sh"),
        Script("link", tmp_path / "link.sh"),
        Script("owner_only_x", tmp_path / "owner_only_x"),
    ]
    assert result.conflicts == []
    assert discover(tmp_path) == result.scripts


@pytest.mark.parametrize(
    ("name", "test"),
    [
        ("cpu.py", "cpu"),
        ("Disk.PY", "disk"),
        ("MyCheck.sh", "mycheck"),
        ("check_http", "check_http"),
        ("CHECK_NTP", "check_ntp"),
        ("load.v2.py", "load.v2"),
    ],
)
def test_test_name_is_the_lowercased_stem(name: str, test: str) -> None:
    assert script_test_name(name) == test
    assert script_test_name(Path("/some/dir") / name) == test


@pytest.mark.parametrize(
    ("name", "candidate"),
    [
        ("cpu.py", True),
        ("check", True),
        ("README", False),
        ("Readme.txt", False),
        (".env", False),
        ("cpu.py~", False),
        ("cpu.py.swp", False),
        ("cpu.py.SWO", False),
        ("x.tmp", False),
        ("x.part", False),
        ("x.py.orig", False),
        ("x.rpmnew", False),
        ("#x#", False),
        ("4913", False),
        ("", False),
    ],
)
def test_is_candidate_name(name: str, candidate: bool) -> None:
    assert is_candidate_name(name) is candidate


@pytest.mark.parametrize(
    ("names", "kept", "skipped"),
    [
        (["cpu.py", "CPU.sh"], "cpu.py", ["CPU.sh"]),
        (["cpu.sh", "cpu"], "cpu.sh", ["cpu"]),
        (["Cpu", "cpu"], "Cpu", ["cpu"]),  # same rank: by file name, code point order
        (["cpu.py", "CPU.PY", "cpu.sh", "Cpu"], "CPU.PY", ["cpu.py", "cpu.sh", "Cpu"]),
    ],
)
def test_conflicts_are_resolved_deterministically(
    tmp_path: Path, names: list[str], kept: str, skipped: list[str]
) -> None:
    # Create in both orders: the choice must not depend on directory order.
    for order, directory in ((names, tmp_path / "a"), (names[::-1], tmp_path / "b")):
        directory.mkdir()
        for name in order:
            make(directory, name, 0o755)
        result = scan(directory)
        assert result.scripts == [Script("cpu", directory / kept)]
        assert result.conflicts == [
            Conflict("cpu", directory / kept, directory / s) for s in skipped
        ]


def test_results_are_sorted_by_test_name(tmp_path: Path) -> None:
    for name in ["zeta.sh", "Alpha.py", "mid", "beta.sh"]:
        make(tmp_path, name, 0o755)
    assert [s.test for s in discover(tmp_path)] == ["alpha", "beta", "mid", "zeta"]


def test_missing_directory_has_no_checks(tmp_path: Path) -> None:
    assert discover(tmp_path / "nope") == []
    make(tmp_path, "file")
    assert discover(tmp_path / "file") == []


def test_is_check_file(tmp_path: Path) -> None:
    assert is_check_file(make(tmp_path, "a.py"))
    assert is_check_file(make(tmp_path, "b", 0o755))
    assert not is_check_file(make(tmp_path, "c"))
    assert not is_check_file(make(tmp_path, "d.py~"))
    assert not is_check_file(tmp_path / "vanished.py")
    (tmp_path / "e.sh").mkdir()
    assert not is_check_file(tmp_path / "e.sh")


def test_atomic_write_temp_names_are_never_checks(tmp_path: Path) -> None:
    fd, name = tempfile.mkstemp(dir=tmp_path, prefix=ATOMIC_TEMP_PREFIX, suffix=ATOMIC_TEMP_SUFFIX)
    os.close(fd)
    os.chmod(name, 0o755)
    temp = Path(name)
    assert is_temp_name(temp.name)
    assert not is_candidate_name(temp.name)
    assert not is_check_file(temp)
    assert discover(tmp_path) == []
    temp.rename(tmp_path / "final.py")  # the rename is what makes it a check
    assert discover(tmp_path) == [Script("final", tmp_path / "final.py")]
    assert not is_temp_name("final.py") and not is_temp_name(".reflex-x.py")


def test_bundled_scripts_directory() -> None:
    result = scan(REPO_SCRIPTS)
    assert [s.test for s in result.scripts] == [
        "cpu",
        "disk",
        "load",
        "memory",
        "processes",
        "swap",
    ]
    assert result.conflicts == []
