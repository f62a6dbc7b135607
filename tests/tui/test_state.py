"""The dashboard's plain-data layer: state, ingest, text safety, script diff, thresholds.
No terminal, no network; plus the import hygiene that keeps it that way."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflex_core.events import (
    ChannelMember,
    FileInfo,
    HistoryEntry,
    MembershipEvent,
    Message,
    PresenceAction,
    PresenceEvent,
)
from reflex_core.protocol import Perf, Result, ResultsMessage, StateMessage, Status
from reflex_tui.ingest import Ingest
from reflex_tui.script_sync import (
    LocalScript,
    SyncStatus,
    compare,
    due_for_resend,
    newest_remote,
    parse_created,
    upload_problem,
)
from reflex_tui.state import HISTORY_POINTS, Fleet, Ring, device_matches
from reflex_tui.text import format_number, inert
from reflex_tui.thresholds import Level, bar_level

from .fixed_fleet import NOW, FrozenClock

TT = 10_000_000


def results(ident: str, seq: int, ts: float, **values: float) -> dict[str, Any]:
    return ResultsMessage(
        host=ident,
        id=ident,
        seq=seq,
        ts=ts,
        interval=10,
        results=tuple(
            Result(test=name, status=Status.OK, output=f"{name} ok", value=value, ts=ts)
            for name, value in values.items()
        ),
    ).to_wire()


def make_ingest() -> tuple[Fleet, Ingest, FrozenClock]:
    clock = FrozenClock()
    fleet = Fleet(clock=clock)
    return fleet, Ingest(fleet, membership_channel="members", ignore_chan="ignore"), clock


def live(ident: str, payload: Any, tt: int, publisher: str | None = None) -> Message:
    return Message(f"device.{ident}", "device.*", publisher or ident, tt, payload)


# ----------------------------------------------------------------------------- ring


def test_ring_keeps_newest_points_in_time_order() -> None:
    ring = Ring(capacity=3)
    for i in range(5):
        ring.append(float(i), float(i * 10), 0)
    assert [p[0] for p in ring] == [2.0, 3.0, 4.0]
    ring.append(3.5, None, 1)  # late point: inserted in order, oldest dropped
    assert [(p[0], p[1]) for p in ring] == [(3.0, 30.0), (3.5, None), (4.0, 40.0)]
    ring.merge([(0.5, 1.0, 0), (5.0, 50.0, 0)])
    assert [p[0] for p in ring] == [3.5, 4.0, 5.0]
    assert ring.values(2) == [40.0, 50.0]


def test_ring_memory_is_flat_arrays() -> None:
    """Issue 7's budget: 500 x 10 tests x 360 points must stay far under 150 MB."""
    ring = Ring()
    for i in range(HISTORY_POINTS + 10):
        ring.append(float(i), float(i), 0)
    size = sum(sys.getsizeof(a) for a in (ring._ts, ring._values, ring._codes))
    assert size < 8 * 1024
    assert len(ring) == HISTORY_POINTS


# ----------------------------------------------------------------------------- ingest


def test_results_attributed_by_channel_and_publisher() -> None:
    fleet, ingest, _ = make_ingest()
    fleet.add_member("web1")
    payload = results("someone-else", 1, NOW, cpu=5.0)  # payload claims another id
    ingest.message(live("web1", payload, 1 * TT))
    assert fleet.devices["web1"].tests["cpu"].last is not None
    assert "someone-else" not in fleet.devices
    notice = ingest.message(live("web1", results("web1", 2, NOW, cpu=99.0), 2 * TT, "mallory"))
    assert notice is not None and "mallory" in notice.text
    assert fleet.devices["web1"].tests["cpu"].last.value == 5.0  # type: ignore[union-attr]
    assert fleet.devices["web1"].spoof is not None
    assert ingest.message(live("web1", {"v": 1}, 3 * TT, "mallory")) is None  # told once


def test_garbage_payload_is_a_device_problem() -> None:
    fleet, ingest, _ = make_ingest()
    fleet.add_member("web1")
    ingest.message(live("web1", {"v": 1, "kind": "results"}, TT))
    assert "malformed" in (fleet.devices["web1"].problem or "")


def test_history_and_live_merge_without_duplicates() -> None:
    fleet, ingest, _ = make_ingest()
    fleet.add_member("web1")
    # Live arrives first (tt 5), history covers 1..5 (5 is the same message).
    ingest.message(live("web1", results("web1", 5, NOW - 5, cpu=5.0), 5 * TT))
    entries = [
        HistoryEntry("device.web1", i * TT, results("web1", i, NOW - 10 + i, cpu=float(i)), "web1")
        for i in range(1, 6)
    ]
    assert ingest.history("web1", entries) == 4
    series = fleet.devices["web1"].tests["cpu"]
    assert series.history.values() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert series.last is not None and series.last.value == 5.0
    # A later live delivery of something history already had is skipped.
    fleet2, ingest2, _ = make_ingest()
    fleet2.add_member("web1")
    ingest2.history("web1", entries)
    ingest2.message(live("web1", results("web1", 5, NOW - 5, cpu=5.0), 5 * TT))
    assert fleet2.devices["web1"].tests["cpu"].history.values() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_history_from_other_publishers_is_not_data() -> None:
    fleet, ingest, _ = make_ingest()
    fleet.add_member("web1")
    entry = HistoryEntry("device.web1", TT, results("web1", 1, NOW, cpu=1.0), "mallory")
    assert ingest.history("web1", [entry]) == 0
    assert fleet.devices["web1"].spoof is not None and not fleet.devices["web1"].tests


def test_membership_presence_and_members() -> None:
    fleet, ingest, _ = make_ingest()
    ids = ingest.members(
        [
            ChannelMember("web1", "web1.example.com", {"ignore": "swap,Load", "interval": 30}),
            ChannelMember("Not An Id!", "x"),
        ]
    )
    assert ids == ["web1"]
    device = fleet.devices["web1"]
    assert device.name == "web1.example.com"
    assert device.effective_ignore() == ("load", "swap") and device.effective_interval() == 30
    assert ingest.membership(MembershipEvent("members", "db1", "set")) == "db1"
    assert ingest.membership(MembershipEvent("other", "db2", "set")) is None
    assert [d.id for d in fleet.members()] == ["db1", "web1"]
    ingest.presence(PresenceEvent("ignore", PresenceAction.JOIN, "db1", 1, TT))
    assert fleet.devices["db1"].online
    ingest.presence(
        PresenceEvent(
            "ignore", PresenceAction.INTERVAL, None, 1, TT, joined=("web1",), timed_out=("db1",)
        )
    )
    assert fleet.devices["web1"].online and not fleet.devices["db1"].online
    ingest.membership(MembershipEvent("members", "db1", "delete"))
    assert [d.id for d in fleet.members()] == ["web1"]


def test_pending_settings_until_state_confirms() -> None:
    fleet, ingest, _ = make_ingest()
    device = fleet.add_member("web1")
    device.apply_settings(("cpu",), 30, pending=True)
    assert device.pending_ignore == ("cpu",) and device.pending_interval == 30
    assert device.is_pending_test("cpu")
    state = StateMessage(host="web1", id="web1", ts=NOW, interval=30, ignored=("cpu",))
    ingest.message(live("web1", state.to_wire(), TT))
    assert device.pending_ignore is None and device.pending_interval is None
    assert device.ignored == ("cpu",) and device.interval == 30


def test_stale_after_three_intervals() -> None:
    fleet, ingest, clock = make_ingest()
    device = fleet.add_member("web1")
    ingest.message(live("web1", results("web1", 1, NOW, cpu=1.0), TT))
    assert not fleet.is_stale(device)
    clock.advance(30)
    assert not fleet.is_stale(device)
    clock.advance(1)
    assert fleet.is_stale(device)
    assert fleet.check_stale() == {"web1"}
    assert fleet.check_stale() == set()  # reported once per change


def test_filter_words() -> None:
    fleet, ingest, _ = make_ingest()
    device = fleet.add_member("web1", name="Web One")
    crit = Result(test="disk", status=Status.CRITICAL, output="x", ts=NOW)
    ingest.message(live("web1", ResultsMessage("web1", "web1", 1, NOW, 10, (crit,)).to_wire(), TT))
    assert device_matches(device, "one", NOW, 10)
    assert device_matches(device, "crit offline", NOW, 10)
    assert not device_matches(device, "warn", NOW, 10)
    assert not device_matches(device, "online", NOW, 10)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "v",
                        "kind",
                        "host",
                        "id",
                        "results",
                        "ts",
                        "seq",
                        "interval",
                        "test",
                        "status",
                    ]
                )
                | st.text(),
                children,
                max_size=6,
            )
        ),
        max_leaves=20,
    ),
    channel=st.sampled_from(["device.web1", "device.", "device.*", "members", "x"]),
    publisher=st.sampled_from([None, "web1", "mallory", ""]),
)
def test_hostile_messages_never_raise(payload: Any, channel: str, publisher: str | None) -> None:
    fleet, ingest, _ = make_ingest()
    fleet.add_member("web1")
    ingest.message(Message(channel, None, publisher, TT, payload))
    ingest.history("web1", [HistoryEntry(channel, TT, payload, publisher)])


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain [bold]x[/]", "plain [bold]x[/]"),
        ("\x1b[31mred\x1b[0m", "␛red␛"),
        ("\x1b]8;;http://evil\x1b\\link", "␛link"),
        ("a\tb\x00c\x7f", "a b␀c␡"),
        ("rtl\u202eevil", "rtl\ufffdevil"),
        ("line1\nline2", "line1␊line2"),
    ],
)
def test_inert(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_format_number() -> None:
    assert [format_number(v) for v in (0.123, 12.34, 123.4, 12345.0, 5.0, None, math.nan)] == [
        "0.12",
        "12.3",
        "123",
        "12.3k",
        "5",
        "–",
        "–",
    ]


def test_bar_levels_use_script_thresholds_else_seed() -> None:
    def result(value: float, warn: str | None = None, crit: str | None = None) -> Result:
        perf = (Perf("x", value, "%", warn, crit),) if warn or crit else ()
        return Result(test="x", status=Status.OK, value=value, unit="%", perf=perf)

    assert bar_level(result(69)) is Level.NORMAL
    assert bar_level(result(70)) is Level.WARN
    assert bar_level(result(90)) is Level.DANGER
    assert bar_level(result(75, "80", "95")) is Level.NORMAL
    assert bar_level(result(85, "80", "95")) is Level.WARN
    assert bar_level(result(96, "80", "95")) is Level.DANGER
    assert bar_level(result(15, "20:", "10:")) is Level.WARN  # below a lower bound


# ----------------------------------------------------------------------------- scripts


def test_compare_and_resend_selection(tmp_path: Any) -> None:
    local = [
        LocalScript("a.py", tmp_path / "a.py", 10, NOW, "1" * 64),
        LocalScript("b.sh", tmp_path / "b.sh", 10, NOW, "2" * 64),
        LocalScript("c.sh", tmp_path / "c.sh", 10, NOW, "3" * 64),
    ]
    remote = [
        FileInfo("id-b-old", "b.sh", 9, "2023-01-01T00:00:00Z"),
        FileInfo("id-b", "b.sh", 10, "2023-11-14T00:00:00Z"),
        FileInfo("id-c", "c.sh", 10, "2023-11-14T00:00:00Z"),
        FileInfo("id-d", "d.sh", 5, "2023-10-01T00:00:00Z"),
    ]
    rows = {r.name: r.status for r in compare(local, remote, {"id-b": "2" * 64})}
    assert rows == {
        "a.py": SyncStatus.LOCAL_ONLY,
        "b.sh": SyncStatus.SAME,
        "c.sh": SyncStatus.DIFFERS,  # same size, hash unknown or different
        "d.sh": SyncStatus.REMOTE_ONLY,
    }
    due = due_for_resend(remote, parse_created("2023-11-14T00:00:00Z") or 0, 20 * 86_400)
    assert [f.id for f in due] == ["id-d"]  # b's newest copy is fresh


@pytest.mark.parametrize(
    ("name", "size", "problem"),
    [
        ("ok.py", 10, None),
        ("../x.py", 10, "bad name"),
        (".hidden.py", 10, "bad name"),
        ("x.exe", 10, "bad name"),
        ("a,b.py", 10, "bad name"),
        ("big.sh", 5 * 1024 * 1024 + 1, "too large"),
    ],
)
def test_upload_problem(name: str, size: int, problem: str | None) -> None:
    found = upload_problem(name, size)
    assert (found is None) if problem is None else (found or "").startswith(problem)


# ----------------------------------------------------------------------------- hygiene


PURE_MODULES = [
    "reflex_tui.state",
    "reflex_tui.ingest",
    "reflex_tui.text",
    "reflex_tui.thresholds",
    "reflex_tui.script_sync",
    "reflex_tui.controller",
]


def test_domain_modules_import_no_ui() -> None:
    """state/ingest (and the other plain modules) never import Textual or Rich; only the
    controller may use the bus (and so the SDK); nothing imports the agent. Each module is
    imported alone in a fresh interpreter (all started at once, to keep the suite fast)."""
    procs = {}
    for module in PURE_MODULES:
        forbidden = ["textual", "rich", "reflex_agent"]
        if module != "reflex_tui.controller":
            forbidden.append("pubnub")
        code = (
            f"import sys, {module}\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
        )
        procs[module] = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    code = (
        "import sys, pkgutil, importlib, reflex_tui\n"
        "for m in pkgutil.walk_packages(reflex_tui.__path__, 'reflex_tui.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('reflex_agent' if 'reflex_agent' in sys.modules else '')"
    )
    procs["all of reflex_tui"] = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "", f"{module} imported {out.strip()}"


def test_same_second_uploads_prefer_our_latest() -> None:
    """`created` has one-second resolution: a re-upload in the same second must win."""
    old = FileInfo("zzz-old", "x.sh", 5, "2023-11-14T00:00:00Z")
    new = FileInfo("aaa-new", "x.sh", 5, "2023-11-14T00:00:00Z")
    assert newest_remote([old, new], recent=["zzz-old", "aaa-new"])["x.sh"] is new
    assert newest_remote([new, old], recent=["aaa-new", "zzz-old"])["x.sh"] is old
