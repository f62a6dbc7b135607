"""Command handling as a pure decision: every shape, for us, for all, for others, and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflex_agent.commands import (
    AgentSettings,
    Applied,
    Effects,
    Malformed,
    NotForUs,
    apply_command,
    decide,
)
from reflex_core.protocol import RunNow, SetIgnore

ME = "web1-example-com"
BEFORE = AgentSettings(ignore=("swap",), interval=10)


@pytest.mark.parametrize("target", [ME, "*"])
@pytest.mark.parametrize(
    ("payload", "settings", "effects"),
    [
        (
            {"v": 1, "kind": "set_ignore", "ignore": ["CPU", "disk", "cpu"]},
            AgentSettings(("cpu", "disk"), 10),
            Effects(persist=True, publish_state=True),
        ),
        (
            {"v": 1, "kind": "set_ignore", "ignore": []},
            AgentSettings((), 10),
            Effects(persist=True, publish_state=True),
        ),
        (
            {"v": 1, "kind": "set_interval", "interval": 30},
            AgentSettings(("swap",), 30),
            Effects(persist=True, reschedule=True, publish_state=True),
        ),
        (
            {"v": 1, "kind": "set_interval", "interval": 86400},
            AgentSettings(("swap",), 86400),
            Effects(persist=True, reschedule=True, publish_state=True),
        ),
        ({"v": 1, "kind": "refresh"}, BEFORE, Effects(publish_state=True, run_all=True)),
        ({"v": 1, "kind": "run_now"}, BEFORE, Effects(run_all=True)),
        ({"v": 1, "kind": "run_now", "test": "Disk"}, BEFORE, Effects(run_tests=("disk",))),
    ],
)
def test_v1_commands_for_this_device(
    target: str, payload: dict[str, object], settings: AgentSettings, effects: Effects
) -> None:
    decision = decide({**payload, "target": target}, ME, BEFORE)
    assert isinstance(decision, Applied)
    assert decision.settings == settings
    assert decision.effects == effects
    assert decision.summary


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 1, "kind": "set_ignore", "target": "web2", "ignore": ["cpu"]},
        {"v": 1, "kind": "set_interval", "target": "web2", "interval": 5},
        {"v": 1, "kind": "refresh", "target": "web1"},  # a prefix of our id is another device
        {"v": 1, "kind": "run_now", "target": "web1-example-com-2"},
        {"host": "web2.example.com", "ignore": "cpu"},
        {"host": "web2", "command": "refresh"},
    ],
)
def test_commands_for_another_device_are_not_for_us(payload: dict[str, object]) -> None:
    assert isinstance(decide(payload, ME, BEFORE), NotForUs)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # The seed's shapes: host by real name (any case) or by id; "*" stays "*".
        ({"host": "Web1.Example.com", "ignore": "CPU, disk"}, AgentSettings(("cpu", "disk"), 10)),
        ({"host": ME, "ignore": "load"}, AgentSettings(("load",), 10)),
        ({"host": "*", "ignore": ""}, AgentSettings((), 10)),  # "" re-enables everything
        ({"host": "web1.example.com", "ignore": " , cpu ,, "}, AgentSettings(("cpu",), 10)),
    ],
)
def test_legacy_ignore(payload: dict[str, object], expected: AgentSettings) -> None:
    decision = decide(payload, ME, BEFORE)
    assert isinstance(decision, Applied)
    assert isinstance(decision.command, SetIgnore)
    assert decision.settings == expected
    assert decision.effects == Effects(persist=True, publish_state=True)


@pytest.mark.parametrize("host", ["web1.example.com", ME, "*"])
def test_legacy_refresh(host: str) -> None:
    decision = decide({"host": host, "command": "refresh"}, ME, BEFORE)
    assert isinstance(decision, Applied)
    assert decision.settings == BEFORE
    assert decision.effects == Effects(publish_state=True, run_all=True)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "refresh",
        42,
        [],
        ["set_ignore"],
        {},
        {"v": 1},
        {"v": 1, "kind": "reboot", "target": ME},
        {"v": 2, "kind": "refresh", "target": ME},
        {"v": "1", "kind": "refresh", "target": ME},
        {"v": 1, "kind": "refresh"},  # no target
        {"v": 1, "kind": "refresh", "target": "Web1!"},
        {"v": 1, "kind": "refresh", "target": 7},
        {"v": 1, "kind": "set_interval", "target": ME, "interval": 0},
        {"v": 1, "kind": "set_interval", "target": ME, "interval": 10**9},
        {"v": 1, "kind": "set_interval", "target": ME, "interval": "10"},
        {"v": 1, "kind": "set_interval", "target": ME, "interval": 1.5},
        {"v": 1, "kind": "set_interval", "target": ME, "interval": True},
        {"v": 1, "kind": "set_interval", "target": ME},
        {"v": 1, "kind": "set_ignore", "target": ME, "ignore": "cpu"},
        {"v": 1, "kind": "set_ignore", "target": ME, "ignore": [f"t{i}" for i in range(10_000)]},
        {"v": 1, "kind": "set_ignore", "target": ME, "ignore": ["a,b"]},
        {"v": 1, "kind": "set_ignore", "target": ME, "ignore": [".hidden"]},
        {"v": 1, "kind": "set_ignore", "target": ME, "ignore": [None]},
        {"v": 1, "kind": "run_now", "target": ME, "test": ""},
        {"v": 1, "kind": "run_now", "target": ME, "test": 3},
        {"host": ME, "command": "reboot"},
        {"host": ME, "ignore": ["cpu"]},
        {"host": ME, "ignore": "cpu", "command": "refresh"},
        {"host": ME},
        {"host": 5, "command": "refresh"},
        {"host": "", "command": "refresh"},
        {"host": "x" * 300, "command": "refresh"},
    ],
)
def test_malformed_input_is_one_reason_never_an_exception(payload: object) -> None:
    decision = decide(payload, ME, BEFORE)
    assert isinstance(decision, Malformed), decision
    assert decision.reason and "\n" not in decision.reason


def test_apply_command_run_now_names_the_test() -> None:
    applied = apply_command(BEFORE, RunNow(target="*", test="CPU"))
    assert applied.effects.run_tests == ("cpu",)
    assert applied.settings is BEFORE


def test_ignore_matching_is_case_insensitive() -> None:
    assert AgentSettings(("cpu",), 10).ignores("CPU")
    assert not AgentSettings(("cpu",), 10).ignores("disk")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_commandish = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, "1", None]),
        "kind": st.sampled_from(["set_ignore", "set_interval", "refresh", "run_now", "x"]),
        "target": st.sampled_from([ME, "*", "other", "", 1]),
        "host": st.sampled_from([ME, "web1.example.com", "*", "", 3]),
        "ignore": _json,
        "interval": _json,
        "test": _json,
        "command": _json,
    },
)


@settings(max_examples=200, deadline=None)
@given(payload=_json | _commandish)
def test_decide_never_raises(payload: object) -> None:
    decision = decide(payload, ME, BEFORE)
    assert isinstance(decision, Applied | NotForUs | Malformed)
    if isinstance(decision, Applied):
        assert 1 <= decision.settings.interval <= 86400
