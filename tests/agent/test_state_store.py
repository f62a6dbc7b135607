"""The local state file: the agent's fallback memory when App Context is unreachable."""

from __future__ import annotations

import os
from pathlib import Path

from reflex_agent.state_store import LocalState, StateStore, atomic_write


def test_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "web1.json")
    store.save(LocalState(ignored=["cpu", "disk"], interval=30, versions={"x.py": 17}))
    again = StateStore(store.path).load()
    assert again == LocalState(ignored=["cpu", "disk"], interval=30, versions={"x.py": 17})
    assert (store.path.stat().st_mode & 0o777) == 0o600


def test_missing_file_is_empty_state(tmp_path: Path) -> None:
    assert StateStore(tmp_path / "nope.json").load() == LocalState()


def test_garbage_is_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    for body in ("{not json", "[1,2]", '{"ignored": "cpu", "interval": -3, "versions": 5}'):
        path.write_text(body)
        assert StateStore(path).load() == LocalState()


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "check.py"
    atomic_write(target, b"print(1)\n", mode=0o640)
    atomic_write(target, b"print(2)\n", mode=0o640)
    assert target.read_bytes() == b"print(2)\n"
    assert os.listdir(tmp_path) == ["check.py"]
    assert (target.stat().st_mode & 0o777) == 0o640
