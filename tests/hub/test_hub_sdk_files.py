"""File Sharing through the real SDK: send, file event, list, URL, download, delete."""

from __future__ import annotations

import aiohttp

from reflex_hub import HubHandle

from .support import PubNubFactory, http, next_item, subscribed


async def test_send_list_download_delete_with_file_event(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    agent = make_pubnub(hub, "agent")
    tui = make_pubnub(hub, "tui")
    events = await subscribed(agent, ["config"])
    script = b"#!/bin/sh\necho 'OK - load fine'\n" + bytes(range(256))

    sent = await (
        tui.send_file()
        .channel("config")
        .file_name("check load.sh")
        .file_object(script)
        .message({"sha256": "abc"})
        .should_store(True)
        .future()
    )
    assert not sent.status.is_error()
    file_id = sent.result.file_id
    assert sent.result.name == "check load.sh"

    event = await next_item(events.files)
    assert (event.file_id, event.file_name, event.message) == (
        file_id,
        "check load.sh",
        {"sha256": "abc"},
    )
    assert event.publisher == "tui"
    assert event.file_url.startswith(hub.url + "/v1/files/")

    listed = await agent.list_files().channel("config").future()
    assert listed.result.count == 1
    entry = listed.result.data[0]
    assert (entry["id"], entry["name"], entry["size"]) == (file_id, "check load.sh", len(script))
    assert entry["created"].endswith("Z")

    url = (
        await agent.get_file_url()
        .channel("config")
        .file_id(file_id)
        .file_name("check load.sh")
        .future()
    )
    assert url.result.file_url.startswith(hub.url + "/")
    downloaded = await (
        agent.download_file().channel("config").file_id(file_id).file_name("check load.sh").future()
    )
    assert downloaded.result.data == script

    # The URL in the file event redirects to the same bytes.
    async with aiohttp.ClientSession() as session, session.get(event.file_url) as response:
        assert response.status == 200
        assert await response.read() == script

    history = await agent.fetch_messages().channels("config").include_message_type(True).future()
    [stored] = history.result.channels["config"]
    assert stored.message == {
        "message": {"sha256": "abc"},
        "file": {"id": file_id, "name": "check load.sh"},
    }
    assert stored.message_type == 4

    deleted = (
        await agent.delete_file()
        .channel("config")
        .file_id(file_id)
        .file_name("check load.sh")
        .future()
    )
    assert not deleted.status.is_error()
    after = await agent.list_files().channel("config").future()
    assert after.result.data == [] and after.result.count == 0
    status, body, _ = await http(hub, "GET", event.file_url.split(hub.url, 1)[1])
    assert status == 404 and body["error"]["source"] == "files"


async def test_list_files_pages(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "uploader")
    ids = set()
    for index in range(5):
        sent = await (
            client.send_file()
            .channel("config")
            .file_name(f"s{index}.sh")
            .file_object(b"x")
            .future()
        )
        ids.add(sent.result.file_id)
    seen: list[str] = []
    page = await client.list_files().channel("config").limit(2).future()
    while True:
        assert page.result.count == len(page.result.data) <= 2
        seen += [entry["id"] for entry in page.result.data]
        if page.result.next is None:
            break
        page = await client.list_files().channel("config").limit(2).next(page.result.next).future()
    assert seen == sorted(ids)  # PubNub lists by id
