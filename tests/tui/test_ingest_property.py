"""Hostile input on the dashboard's side: anything on `device.*`, any membership or presence
event is absorbed by `Ingest` without an exception, and what it stores still renders.

Anyone holding the publish key can put arbitrary JSON on `device.x`; PubNub (or a broken hub)
can deliver odd presence and App Context events. The dashboard must keep running and show
bad input as a warning, never crash on it.

The default run is 300 examples per test; `HYPOTHESIS_PROFILE=ci-full pytest -m property`
runs 10,000 each (the profile is registered in tests/conftest.py).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflex_core.events import MembershipEvent, Message, PresenceAction, PresenceEvent
from reflex_core.protocol import Result, ResultsMessage, StateMessage, Status
from reflex_tui.ingest import Ingest
from reflex_tui.state import Fleet
from reflex_tui.widgets.render import output_row, presence_line
from reflex_tui.widgets.render import test_row as render_test_row

DEFAULT_EXAMPLES = 300
EXAMPLES = max(DEFAULT_EXAMPLES, settings.default.max_examples)
pytestmark = [pytest.mark.property, pytest.mark.timeout(120 if EXAMPLES <= 1000 else 1800)]
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "[bold red]x[/]",
            "[link=file:///etc/passwd]click[/link]",
            "\x1b[2J\x1b[31mred\x1b]0;title\x07",
            "\x00\x07\x08\r\n\t",
            "\ud800",
            "é" * 600,
        ]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(HOSTILE_TEXT, inner, max_size=5)
    ),
    max_leaves=25,
)
IDS = st.one_of(st.sampled_from(["a", "b", "web1-example-com"]), HOSTILE_TEXT)
CHANNELS = st.one_of(
    IDS.map(lambda i: f"device.{i}"),
    st.sampled_from(["device.", "device.*", "device..x", "members", "ignore"]),
    HOSTILE_TEXT,
)


def _valid_results(ident: str, output: str, value: float | None) -> dict[str, Any]:
    return ResultsMessage(
        host=ident,
        id=ident,
        seq=1,
        ts=1_700_000_000.0,
        interval=10,
        results=(Result.build("cpu", Status.OK, output, value=value, unit="%"),),
    ).to_wire()


def _mutated(base: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    """A valid message with one field replaced: the near-misses a parser must catch."""
    copy = dict(base)
    copy[key] = value
    return copy


@st.composite
def device_payloads(draw: st.DrawFn) -> object:
    ident = draw(st.sampled_from(["a", "b"]))
    value = draw(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
    base = _valid_results(ident, draw(HOSTILE_TEXT), value)
    state = StateMessage(host=ident, id=ident, ts=1_700_000_000.0, interval=10).to_wire()
    return draw(
        st.one_of(
            JSONISH,
            st.just(base),
            st.builds(_mutated, st.just(base), st.sampled_from(sorted(base)), JSONISH),
            st.builds(_mutated, st.just(state), st.sampled_from(sorted(state)), JSONISH),
        )
    )


def _fleet() -> tuple[Fleet, Ingest]:
    fleet = Fleet(clock=lambda: 1_700_000_100.0, membership_channel="members")
    ingest = Ingest(fleet, membership_channel="members", ignore_chan="ignore")
    for member in ("a", "b"):
        ingest.membership(MembershipEvent("members", member, "set"))
    return fleet, ingest


def _renders(fleet: Fleet) -> None:
    """Everything stored must still render into one-line, markup-free card rows."""
    fleet.counts()
    fleet.take_changes()
    for device in fleet.devices.values():
        presence_line(device, fleet, 40)
        for series in device.tests.values():
            render_test_row(series, 40, 10)
            last = series.last
            if last is not None:
                output_row(last, 40)


@PROPERTY
@given(
    events=st.lists(
        st.tuples(CHANNELS, st.one_of(st.none(), IDS), st.integers(0, 2**64), device_payloads()),
        min_size=1,
        max_size=6,
    )
)
def test_any_message_on_device_channels_is_absorbed(
    events: list[tuple[str, str | None, int, object]],
) -> None:
    fleet, ingest = _fleet()
    for channel, publisher, timetoken, payload in events:
        ingest.message(Message(channel, "device.*", publisher, timetoken, payload))
    _renders(fleet)


@PROPERTY
@given(
    events=st.lists(
        st.one_of(
            st.builds(
                PresenceEvent,
                channel=st.one_of(st.just("ignore"), HOSTILE_TEXT),
                action=st.one_of(st.sampled_from(list(PresenceAction)), HOSTILE_TEXT),
                uuid=st.one_of(st.none(), IDS),
                occupancy=st.integers(-5, 10**6),
                timetoken=st.integers(0, 2**64),
                state=st.one_of(st.none(), st.dictionaries(HOSTILE_TEXT, SCALARS, max_size=3)),
                joined=st.lists(IDS, max_size=3).map(tuple),
                left=st.lists(IDS, max_size=3).map(tuple),
                timed_out=st.lists(IDS, max_size=3).map(tuple),
            ),
            st.builds(
                MembershipEvent,
                channel=st.one_of(st.just("members"), HOSTILE_TEXT),
                uuid=IDS,
                action=st.one_of(st.sampled_from(["set", "delete"]), HOSTILE_TEXT),
                custom=st.one_of(st.none(), st.dictionaries(HOSTILE_TEXT, SCALARS, max_size=3)),
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_presence_or_membership_event_is_absorbed(events: list[object]) -> None:
    fleet, ingest = _fleet()
    for event in events:
        if isinstance(event, PresenceEvent):
            ingest.presence(event)
        else:
            assert isinstance(event, MembershipEvent)
            ingest.membership(event)
    _renders(fleet)
    assert all(isinstance(d, str) for d in fleet.online)


def test_hostile_output_is_stored_inert() -> None:
    """A concrete case the generators also cover: markup and escapes stay literal text."""
    fleet, ingest = _fleet()
    payload = _valid_results("a", "[bold red]boom[/] \x1b[2Jcleared", 12.5)
    ingest.message(Message("device.a", "device.*", "a", 1, payload))
    row = output_row(fleet.devices["a"].tests["cpu"].last, 80)  # type: ignore[arg-type]
    plain = row.plain
    assert "[bold red]boom[/]" in plain
    assert "\x1b" not in plain and not math.isnan(12.5)
