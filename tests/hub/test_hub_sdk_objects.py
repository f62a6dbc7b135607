"""App Context through the real SDK: metadata, members with paging, memberships, events."""

from __future__ import annotations

from pubnub.exceptions import PubNubException
from pubnub.models.consumer.objects_v2.channel_members import PNUserMember
from pubnub.models.consumer.objects_v2.common import MemberIncludes, MembershipIncludes
from pubnub.models.consumer.objects_v2.memberships import PNChannelMembership
from pubnub.models.consumer.objects_v2.page import Next, Previous

from reflex_hub import HubHandle

from .support import PubNubFactory, next_item, subscribed


async def test_uuid_metadata_lifecycle_and_events(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    watcher = make_pubnub(hub, "watcher")
    # uuid events are delivered on the channel named after the uuid.
    events = await subscribed(watcher, ["web1-example-com"])
    agent = make_pubnub(hub, "web1-example-com")

    custom = {"ignore": "cpu,disk", "interval": 10}
    created = await agent.set_uuid_metadata().set_name("web1.example.com").custom(custom).future()
    assert not created.status.is_error()
    assert created.result.data["name"] == "web1.example.com"
    assert created.result.data["custom"] == custom
    set_event = await next_item(events.uuid_events)
    assert set_event.event == "set"
    assert set_event.data["id"] == "web1-example-com"
    assert set_event.data["custom"] == custom

    fetched = await watcher.get_uuid_metadata(uuid="web1-example-com", include_custom=True).future()
    assert fetched.result.data["custom"] == custom
    assert fetched.result.data["eTag"] == created.result.data["eTag"]

    # The legacy spelling sends count=True (MemberIncludes(total_count=True): include=totalCount).
    everyone = await watcher.get_all_uuid_metadata(include_total_count=True).future()
    assert [item["id"] for item in everyone.result.data] == ["web1-example-com"]
    assert everyone.result.total_count == 1

    removed = await agent.remove_uuid_metadata().future()
    assert removed.result.data is None
    delete_event = await next_item(events.uuid_events)
    assert (delete_event.event, delete_event.data) == ("delete", {"id": "web1-example-com"})
    missing = await watcher.get_uuid_metadata().uuid("web1-example-com").future()
    assert missing.status.is_error() and missing.status.status_code == 404


async def test_channel_metadata_lifecycle_and_events(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    client = make_pubnub(hub, "admin")
    events = await subscribed(client, ["availability_monitor"])
    created = await (
        client.set_channel_metadata(channel="availability_monitor", include_custom=True)
        .set_name("Fleet")
        .description("membership registry")
        .custom({"v": 1})
        .future()
    )
    assert created.result.data["description"] == "membership registry"
    event = await next_item(events.channel_events)
    assert (event.event, event.data["name"]) == ("set", "Fleet")
    listed = await client.get_all_channel_metadata().future()
    assert [item["id"] for item in listed.result.data] == ["availability_monitor"]
    await client.remove_channel_metadata().channel("availability_monitor").future()
    deleted = await next_item(events.channel_events)
    assert deleted.event == "delete"


async def test_channel_members_paging_includes_and_events(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    tui = make_pubnub(hub, "tui")
    events = await subscribed(tui, ["availability_monitor", "agent-b"])
    for name in ("agent-a", "agent-b", "agent-c", "agent-d", "agent-e"):
        await make_pubnub(hub, name).set_uuid_metadata().set_name(name.upper()).future()

    members = [PNUserMember(name, custom={"role": "agent"}) for name in ("agent-c", "agent-a")]
    members += [PNUserMember(name) for name in ("agent-b", "agent-e", "agent-d")]
    stored = await tui.set_channel_members().channel("availability_monitor").uuids(members).future()
    assert not stored.status.is_error()

    # Each member set is announced on the channel, and on the member's own channel.
    on_channel = [await next_item(events.membership_events) for _ in range(6)]
    on_registry = [e for e in on_channel if e.data["channel"]["id"] == "availability_monitor"]
    assert {e.data["uuid"]["id"] for e in on_registry} >= {"agent-a", "agent-c"}
    assert all(e.event == "set" for e in on_channel)

    include = MemberIncludes(custom=True, user=True, total_count=True)
    page1 = await (
        tui.get_channel_members().channel("availability_monitor").limit(2).include(include).future()
    )
    assert page1.result.total_count == 5
    assert [m["uuid"]["id"] for m in page1.result.data] == ["agent-a", "agent-b"]
    assert page1.result.data[0]["custom"] == {"role": "agent"}
    assert page1.result.data[0]["uuid"]["name"] == "AGENT-A"
    assert page1.result.prev is None and page1.result.next is not None

    seen = [m["uuid"]["id"] for m in page1.result.data]
    page = page1
    while page.result.next is not None:
        page = await (
            tui.get_channel_members()
            .channel("availability_monitor")
            .limit(2)
            .page(Next(page.result.next.hash))
            .future()
        )
        seen += [m["uuid"]["id"] for m in page.result.data]
    assert seen == ["agent-a", "agent-b", "agent-c", "agent-d", "agent-e"]
    back = await (
        tui.get_channel_members()
        .channel("availability_monitor")
        .limit(2)
        .page(Previous(page.result.prev.hash))
        .future()
    )
    assert [m["uuid"]["id"] for m in back.result.data] == ["agent-c", "agent-d"]

    remaining = await (
        tui.remove_channel_members()
        .channel("availability_monitor")
        .uuids([PNUserMember("agent-b")])
        .future()
    )
    assert "agent-b" not in [m["uuid"]["id"] for m in remaining.result.data]
    removal = await next_item(events.membership_events, lambda e: e.event == "delete")
    assert removal.data == {"channel": {"id": "availability_monitor"}, "uuid": {"id": "agent-b"}}


async def test_memberships_of_a_uuid(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    agent = make_pubnub(hub, "agent-x")
    await agent.set_channel_metadata().channel("fleet-a").set_name("Fleet A").future()
    result = await (
        agent.set_memberships()
        .channel_memberships(
            [PNChannelMembership.channel("fleet-b"), PNChannelMembership("fleet-a", {"k": "v"})]
        )
        .include(MembershipIncludes(custom=True, channel=True))
        .future()
    )
    assert [m["channel"]["id"] for m in result.result.data] == ["fleet-a", "fleet-b"]
    assert result.result.data[0]["channel"]["name"] == "Fleet A"
    assert result.result.data[0]["custom"] == {"k": "v"}
    members = await agent.get_channel_members().channel("fleet-b").future()
    assert [m["uuid"]["id"] for m in members.result.data] == ["agent-x"]
    left = await (
        agent.remove_memberships()
        .channel_memberships([PNChannelMembership.channel("fleet-b")])
        .future()
    )
    assert [m["channel"]["id"] for m in left.result.data] == ["fleet-a"]


async def test_nested_custom_values_are_refused(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "strict")
    result = await client.set_uuid_metadata().custom({"nested": {"no": 1}}).future()
    assert result.status.is_error()
    assert result.status.status_code == 400
    assert isinstance(result.status.error_data.exception, PubNubException)
