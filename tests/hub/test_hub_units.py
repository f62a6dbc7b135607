"""Unit tests of the hub's building blocks: timetokens, raw paths, wildcards, storage bounds."""

from __future__ import annotations

import pytest

from reflex_hub import store as store_module
from reflex_hub.paths import PathError, match, parse_target, split_channels
from reflex_hub.pubsub import Subscription, wildcard_keys
from reflex_hub.store import Store, StoredMessage
from reflex_hub.timetokens import (
    TICKS_PER_SECOND,
    TimetokenClock,
    parse_timetoken,
    wall_clock_timetoken,
)


def test_timetokens_are_17_digits_strictly_increasing_and_above_the_floor() -> None:
    clock = TimetokenClock()
    tokens = [clock.next() for _ in range(10_000)]
    assert all(len(str(token)) == 17 for token in tokens)
    assert all(later > earlier for earlier, later in zip(tokens, tokens[1:], strict=False))
    # A restarted hub whose persisted last token is ahead of the wall clock
    # (clock stepped back) still issues larger tokens.
    ahead = wall_clock_timetoken() + 3600 * TICKS_PER_SECOND
    restarted = TimetokenClock(floor=ahead)
    assert restarted.next() == ahead + 1
    assert restarted.next() == ahead + 2
    restarted.advance_to(ahead + 100)
    assert restarted.next() == ahead + 101


def test_parse_timetoken_bounds() -> None:
    assert parse_timetoken(None) is None and parse_timetoken("") is None
    assert parse_timetoken("17300000000000000") == 17300000000000000
    for bad in ("-1", "abc", str(2**63)):
        with pytest.raises(ValueError):
            parse_timetoken(bad)


def test_raw_paths_keep_encoded_slashes_and_commas_inside_segments() -> None:
    target = parse_target(
        "/v2/subscribe/sk/a%2Cb,c%2A,device.%2A,sp%20ace/0?tt=1&meta=%7B%22a%22%3A+2%7D&p=%2B"
    )
    assert target.segments == ("v2", "subscribe", "sk", "a%2Cb,c%2A,device.%2A,sp%20ace", "0")
    assert split_channels(target.segments[3]) == ["a,b", "c*", "device.*", "sp ace"]
    assert target.query == {"tt": "1", "meta": '{"a": 2}', "p": "+"}
    published = parse_target("/publish/p/s/0/ch/0/%7B%22path%22%3A%22a%2Fb%22%7D")
    args = match(
        ("publish", "{pub}", "{sub}", "{_}", "{ch}", "{_cb}", "{*msg}"), published.segments
    )
    assert args is not None and args["msg"] == "%7B%22path%22%3A%22a%2Fb%22%7D"
    # A client that did not encode "/" still reaches the message route.
    raw = parse_target("/publish/p/s/0/ch/0/%22a/b%22")
    args = match(("publish", "{pub}", "{sub}", "{_}", "{ch}", "{_cb}", "{*msg}"), raw.segments)
    assert args is not None and args["msg"] == "%22a/b%22"
    assert match(("time", "{_}"), ("time",)) is None
    assert match(("time", "{_}"), ("time", "0", "x")) is None
    with pytest.raises(PathError):
        split_channels("%FF")


def test_wildcards_match_by_prefix_and_keep_presence_separate() -> None:
    assert wildcard_keys("a.b.c") == ["a.*", "a.b.*"]
    assert wildcard_keys("a.b-pnpres") == ["a.*-pnpres"]
    assert wildcard_keys("plain") == []
    subscription = Subscription(["device.*", "device.*-pnpres", "exact"])
    assert subscription.match("device.web1") == (True, "device.*")
    assert subscription.match("device.web1-pnpres") == (True, "device.*-pnpres")
    assert subscription.match("exact") == (True, None)
    assert subscription.match("devices") == (False, None)
    assert Subscription(["device.*"]).match("device.web1-pnpres") == (False, None)
    assert sorted(subscription.stored_prefixes) == ["device."]


def _message(channel: str, timetoken: int) -> StoredMessage:
    return StoredMessage("sk", channel, timetoken, 0, str(timetoken))


def test_history_is_bounded_per_channel_and_by_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_MESSAGES_PER_CHANNEL", 50)
    monkeypatch.setattr(store_module, "PRUNE_SLACK", 5)
    store = Store(None)
    now = wall_clock_timetoken()
    for index in range(120):
        store.queue_message(_message("busy", now + index))
        if index % 7 == 0:
            store.flush()
    store.queue_message(_message("quiet", now))
    store.flush()
    kept = store.fetch_messages("sk", "busy", start=None, end=None, limit=1000, oldest_first=True)
    assert 50 <= len(kept) <= 55
    assert kept[-1].timetoken == now + 119
    assert [m.timetoken for m in kept] == list(range(now + 120 - len(kept), now + 120))

    week = store_module.MAX_MESSAGE_AGE_SECONDS * TICKS_PER_SECOND
    store.queue_message(_message("quiet", now - week - 1))
    assert store.prune_older_than(now) == 1
    remaining = store.fetch_messages(
        "sk", "quiet", start=None, end=None, limit=10, oldest_first=True
    )
    assert [m.timetoken for m in remaining] == [now]
    assert store.last_timetoken() == now + 119
    store.close(now + 500)


def test_catch_up_query_uses_channels_and_prefixes() -> None:
    store = Store(None)
    for timetoken, channel in enumerate(["device.a", "other", "device.b.c", "devices", "x"], 1):
        store.queue_message(_message(channel, timetoken))
    found = store.messages_after("sk", ["x"], ["device."], after=1, upto=5, limit=10)
    assert [(m.channel, m.timetoken) for m in found] == [("device.b.c", 3), ("x", 5)]
    assert store.messages_after("sk", [], [], after=0, upto=5, limit=10) == []
    store.close()
