"""Message persistence through the real SDK: fetch_messages (v3), history (v2), delete."""

from __future__ import annotations

from pubnub.pubnub_asyncio import PubNubAsyncio

from reflex_hub import HubHandle

from .support import PubNubFactory


async def _publish_series(client: PubNubAsyncio, channel: str, count: int) -> list[int]:
    timetokens = []
    for seq in range(count):
        sent = (
            await client.publish().channel(channel).message({"seq": seq}).meta({"m": seq}).future()
        )
        timetokens.append(sent.result.timetoken)
    return timetokens


async def test_fetch_messages_fields_and_paging(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "web1")
    timetokens = await _publish_series(client, "device.web1", 6)

    full = await (
        client.fetch_messages()
        .channels("device.web1")
        .include_meta(True)
        .include_uuid(True)
        .include_message_type(True)
        .future()
    )
    items = full.result.channels["device.web1"]
    assert [item.message for item in items] == [{"seq": n} for n in range(6)]
    assert [int(item.timetoken) for item in items] == timetokens
    assert items[0].meta == {"m": 0}
    assert items[0].uuid == "web1"
    assert items[0].message_type is None  # plain messages; files are 4

    newest = await client.fetch_messages().channels("device.web1").maximum_per_channel(2).future()
    assert [item.message["seq"] for item in newest.result.channels["device.web1"]] == [4, 5]
    older = await (
        client.fetch_messages()
        .channels("device.web1")
        .maximum_per_channel(2)
        .start(timetokens[4])
        .future()
    )
    assert [item.message["seq"] for item in older.result.channels["device.web1"]] == [2, 3]
    forward = await (
        client.fetch_messages()
        .channels("device.web1")
        .maximum_per_channel(2)
        .end(timetokens[1])
        .future()
    )
    assert [item.message["seq"] for item in forward.result.channels["device.web1"]] == [1, 2]
    window = await (
        client.fetch_messages()
        .channels("device.web1")
        .start(timetokens[5])
        .end(timetokens[2])
        .future()
    )
    assert [item.message["seq"] for item in window.result.channels["device.web1"]] == [2, 3, 4]


async def test_fetch_messages_from_several_channels(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    client = make_pubnub(hub, "multi")
    await _publish_series(client, "device.a", 2)
    await _publish_series(client, "device.b", 3)
    result = (
        await client.fetch_messages().channels(["device.a", "device.b", "device.none"]).future()
    )
    assert {name: len(items) for name, items in result.result.channels.items()} == {
        "device.a": 2,
        "device.b": 3,
    }


async def test_history_v2_and_delete(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "legacy")
    timetokens = await _publish_series(client, "old-api", 4)
    plain = await client.history().channel("old-api").count(3).future()
    assert [item.entry for item in plain.result.messages] == [{"seq": 1}, {"seq": 2}, {"seq": 3}]
    assert (plain.result.start_timetoken, plain.result.end_timetoken) == (
        timetokens[1],
        timetokens[3],
    )
    detailed = await (
        client.history()
        .channel("old-api")
        .count(2)
        .reverse(True)
        .include_timetoken(True)
        .include_meta(True)
        .future()
    )
    assert [(i.entry, i.timetoken, i.meta) for i in detailed.result.messages] == [
        ({"seq": 0}, timetokens[0], {"m": 0}),
        ({"seq": 1}, timetokens[1], {"m": 1}),
    ]

    deleted = await (
        client.delete_messages().channel("old-api").start(timetokens[0]).end(timetokens[2]).future()
    )
    assert not deleted.status.is_error()
    left = await client.fetch_messages().channels("old-api").future()
    assert [item.message["seq"] for item in left.result.channels["old-api"]] == [0, 3]
