"""The real SDK against a real hub: time, publish (GET/POST/compressed), signal, fire, subscribe."""

from __future__ import annotations

import asyncio

from reflex_hub import HubHandle

from .support import PubNubFactory, next_item, subscribed


async def test_time(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "timer")
    envelope = await client.time().future()
    assert not envelope.status.is_error()
    assert len(str(int(envelope.result))) == 17


async def test_publish_reaches_subscriber_with_meta_and_publisher(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    listener = make_pubnub(hub, "listener")
    talker = make_pubnub(hub, "talker")
    events = await subscribed(listener, ["device.web1"])
    message = {"path": "a/b%2F c", "text": "grüße ✓", "n": 1}
    sent = await talker.publish().channel("device.web1").message(message).meta({"m": 1}).future()
    assert not sent.status.is_error()
    received = await next_item(events.messages)
    assert received.message == message
    assert received.channel == "device.web1"
    assert received.subscription is None
    assert received.publisher == "talker"
    assert received.user_metadata == {"m": 1}
    assert received.timetoken == sent.result.timetoken


async def test_post_and_compressed_post_publish(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    listener = make_pubnub(hub, "listener")
    plain = make_pubnub(hub, "plain")
    # should_compress makes the SDK send zlib data labelled "Content-Encoding: gzip".
    compressed = make_pubnub(hub, "compressed", should_compress=True)
    events = await subscribed(listener, ["posts"])
    body = {"results": [{"test": "cpu", "output": "x" * 2000}]}
    first = await plain.publish().channel("posts").message(body).use_post(True).future()
    second = await compressed.publish().channel("posts").message(body).use_post(True).future()
    assert not first.status.is_error() and not second.status.is_error()
    got = [await next_item(events.messages), await next_item(events.messages)]
    assert [item.publisher for item in got] == ["plain", "compressed"]
    assert all(item.message == body for item in got)


async def test_signal_is_delivered_as_signal(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    listener = make_pubnub(hub, "listener")
    talker = make_pubnub(hub, "talker")
    events = await subscribed(listener, ["signals"])
    sent = await talker.signal().channel("signals").message("typing").future()
    assert not sent.status.is_error()
    signal = await next_item(events.signals)
    assert signal.message == "typing"
    assert signal.publisher == "talker"
    assert events.messages.empty()


async def test_fire_is_not_delivered_and_store_false_is_not_stored(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    listener = make_pubnub(hub, "listener")
    talker = make_pubnub(hub, "talker")
    events = await subscribed(listener, ["quiet"])
    fired = await talker.fire().channel("quiet").message("fired").future()
    assert not fired.status.is_error()
    await talker.publish().channel("quiet").message("unstored").should_store(False).future()
    await talker.publish().channel("quiet").message("stored").future()
    assert (await next_item(events.messages)).message == "unstored"
    assert (await next_item(events.messages)).message == "stored"
    history = await talker.fetch_messages().channels("quiet").future()
    assert [item.message for item in history.result.channels["quiet"]] == ["stored"]


async def test_wildcard_subscription_reports_the_matched_pattern(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    dashboard = make_pubnub(hub, "dashboard")
    agent = make_pubnub(hub, "agent")
    events = await subscribed(dashboard, ["device.*"])
    for channel in ("other", "device.web1", "device.db.replica", "devices"):
        await agent.publish().channel(channel).message({"on": channel}).future()
    first = await next_item(events.messages)
    second = await next_item(events.messages)
    assert [first.channel, second.channel] == ["device.web1", "device.db.replica"]
    assert first.subscription == second.subscription == "device.*"
    assert events.messages.empty()


async def test_odd_channel_names_round_trip(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    listener = make_pubnub(hub, "listener")
    talker = make_pubnub(hub, "talker")
    channel = "odd name/with+plus&amp;é"
    events = await subscribed(listener, [channel, "plain"])
    await talker.publish().channel(channel).message("hello").future()
    received = await next_item(events.messages)
    assert (received.channel, received.message) == (channel, "hello")


async def test_custom_message_type_is_delivered(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    listener = make_pubnub(hub, "listener")
    talker = make_pubnub(hub, "talker")
    events = await subscribed(listener, ["typed"])
    await (
        talker.publish().channel("typed").message(1).custom_message_type("reflex-results").future()
    )
    received = await next_item(events.messages)
    assert received.custom_message_type == "reflex-results"


async def test_burst_from_many_publishers_arrives_complete_and_in_order(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    listener = make_pubnub(hub, "listener")
    publishers = [make_pubnub(hub, f"agent-{index}") for index in range(5)]
    events = await subscribed(listener, ["device.*"])

    async def burst(client_index: int) -> None:
        client = publishers[client_index]
        for seq in range(40):
            await client.publish().channel(f"device.a{client_index}").message(seq).future()

    await asyncio.gather(*(burst(index) for index in range(len(publishers))))
    received = [await next_item(events.messages) for _ in range(200)]
    timetokens = [item.timetoken for item in received]
    assert timetokens == sorted(timetokens) and len(set(timetokens)) == 200
    for index in range(len(publishers)):
        own = [item.message for item in received if item.channel == f"device.a{index}"]
        assert own == list(range(40))


async def test_subscribe_with_old_timetoken_catches_up(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    talker = make_pubnub(hub, "talker")
    before = int((await talker.time().future()).result)
    for seq in range(3):
        await talker.publish().channel("device.late").message(seq).future()
    late = make_pubnub(hub, "late")
    events = await subscribed(late, ["device.*"], timetoken=before)
    assert [(await next_item(events.messages)).message for _ in range(3)] == [0, 1, 2]


async def test_request_counts_by_kind(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "counter")
    hub.reset_stats()
    await client.time().future()
    await client.publish().channel("c").message(1).future()
    await client.publish().channel("c").message(2).future()
    assert hub.stats == {"time": 1, "publish": 2}
    assert hub.request_count == 3
