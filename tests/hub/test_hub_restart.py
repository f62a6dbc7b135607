"""Persistence: everything a hub stored survives a restart on the same data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from pubnub.models.consumer.objects_v2.channel_members import PNUserMember

from reflex_hub import HubHandle, HubStartError, start_hub

from .support import HubFactory, PubNubFactory, http, next_item, subscribed

SK = "sub-c-reflex-test"


async def test_restart_keeps_history_objects_files_and_cursors(
    hub_factory: HubFactory, make_pubnub: PubNubFactory
) -> None:
    first = await hub_factory()
    agent = make_pubnub(first, "agent-1")
    cursor = int((await agent.time().future()).result)
    sent = [
        await agent.publish().channel("device.agent-1").message({"seq": seq}).future()
        for seq in range(3)
    ]
    await (
        agent.publish().channel("device.agent-1").message("not stored").should_store(False).future()
    )
    await agent.set_uuid_metadata().set_name("Agent One").custom({"interval": 10}).future()
    await (
        agent.set_channel_members()
        .channel("availability_monitor")
        .uuids([PNUserMember("agent-1", custom={"k": "v"})])
        .future()
    )
    script = b"#!/bin/sh\necho OK\n"
    uploaded = (
        await agent.send_file().channel("config").file_name("ok.sh").file_object(script).future()
    )
    last_before = sent[-1].result.timetoken
    port = first.port
    await first.stop()

    # Same port too, so a client that only kept its cursor can resume.
    second = await hub_factory(port=port)
    status, body, _ = await http(
        second, "GET", f"/v2/subscribe/{SK}/device.agent-1/0?tt={cursor}&uuid=raw"
    )
    assert status == 200
    assert [message["d"] for message in body["m"]] == [{"seq": 0}, {"seq": 1}, {"seq": 2}]
    assert int(body["t"]["t"]) > last_before

    tui = make_pubnub(second, "tui")
    assert int((await tui.time().future()).result) > last_before
    events = await subscribed(tui, ["device.*"], timetoken=cursor)
    missed = [await next_item(events.messages) for _ in range(3)]
    assert [item.message for item in missed] == [{"seq": 0}, {"seq": 1}, {"seq": 2}]
    assert [item.timetoken for item in missed] == [s.result.timetoken for s in sent]
    assert {item.subscription for item in missed} == {"device.*"}
    agent_again = make_pubnub(second, "agent-1")
    fresh = await agent_again.publish().channel("device.agent-1").message(9).future()
    assert fresh.result.timetoken > last_before
    assert (await next_item(events.messages)).message == 9

    metadata = await tui.get_uuid_metadata(uuid="agent-1", include_custom=True).future()
    assert (metadata.result.data["name"], metadata.result.data["custom"]) == (
        "Agent One",
        {"interval": 10},
    )
    members = await tui.get_channel_members(
        channel="availability_monitor", include_custom=True
    ).future()
    assert [(m["uuid"]["id"], m["custom"]) for m in members.result.data] == [
        ("agent-1", {"k": "v"})
    ]
    files = await tui.list_files().channel("config").future()
    assert [entry["id"] for entry in files.result.data] == [uploaded.result.file_id]
    downloaded = await (
        tui.download_file()
        .channel("config")
        .file_id(uploaded.result.file_id)
        .file_name("ok.sh")
        .future()
    )
    assert downloaded.result.data == script


async def test_data_dir_is_locked_while_a_hub_runs(hub_factory: HubFactory, tmp_path: Path) -> None:
    running = await hub_factory(data_dir=tmp_path / "shared")
    with pytest.raises(HubStartError, match="in use"):
        await start_hub("127.0.0.1", 0, data_dir=tmp_path / "shared")
    await running.stop()
    again = await hub_factory(data_dir=tmp_path / "shared")
    assert again.data_dir == tmp_path / "shared"


async def test_memory_hub_has_no_data_dir(hub: HubHandle) -> None:
    assert hub.data_dir is None and hub.core.store.path is None
