"""Contract tests: the hub answers PubNub's own requests with PubNub's status codes and shapes.

Each request below is the one the SDK sent in a recording of the real service
(named in the test), and the expected document is the shape PubNub answered
with: literal values where the service's are fixed, types or patterns where
they vary (timetokens, eTags, dates). Dictionaries must have exactly the
listed keys unless a test says otherwise.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any
from urllib.parse import quote

import aiohttp

from reflex_hub import HubHandle

from .support import http

PK = "pub-c-contract"
SK = "sub-c-contract"
TT = re.compile(r"\d{17}")
ISO_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ETAG = re.compile(r"[0-9a-f]{32}")
JS = 'text/javascript; charset="UTF-8"'
JSON = "application/json"


def assert_shape(actual: Any, template: Any, path: str = "$") -> None:
    """Match a document against a template.

    A type matches instances (bool is not an int), a compiled regex matches a
    string, a dict must have exactly its keys, a one-element list matches
    every element, a tuple matches position by position, anything else is
    compared for equality.
    """
    if isinstance(template, type):
        assert isinstance(actual, template), f"{path}: {actual!r} is not {template.__name__}"
        assert not (template is int and isinstance(actual, bool)), f"{path}: bool, not int"
    elif isinstance(template, re.Pattern):
        assert isinstance(actual, str) and template.fullmatch(actual), f"{path}: {actual!r}"
    elif isinstance(template, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert set(actual) == set(template), f"{path}: keys {sorted(actual)} != {sorted(template)}"
        for key, value in template.items():
            assert_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(template, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not an array"
        if not template:
            assert actual == [], f"{path}: expected []"
        for index, item in enumerate(actual):
            assert_shape(item, template[0], f"{path}[{index}]")
    elif isinstance(template, tuple):
        assert isinstance(actual, list) and len(actual) == len(template), f"{path}: {actual!r}"
        for index, (item, expected) in enumerate(zip(actual, template, strict=True)):
            assert_shape(item, expected, f"{path}[{index}]")
    else:
        assert actual == template, f"{path}: {actual!r} != {template!r}"


async def expect(
    hub: HubHandle,
    method: str,
    path: str,
    status: int,
    template: Any,
    content_type: str = JS,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    got_status, document, got_headers = await http(hub, method, path, body=body, headers=headers)
    assert got_status == status, f"{method} {path}: {got_status} {document!r}"
    assert got_headers["Content-Type"] == content_type
    assert_shape(document, template)
    return document


SENT = (1, "Sent", TT)


# -- time, publish, signal (asyncio/time/get, asyncio/publish/*, asyncio/signal/*) -------------


async def test_time(hub: HubHandle) -> None:
    await expect(hub, "GET", "/time/0", 200, (int,))


async def test_publish_variants(hub: HubHandle) -> None:
    base = f"/publish/{PK}/{SK}/0/asyncio-int-publish/0"
    # do_not_store, fire_get, meta_object (old SDK's "+"-for-space encoding), mixed_via_get
    await expect(hub, "GET", base + "/%22hey%22?store=0", 200, SENT)
    await expect(hub, "GET", base + "/%22bla%22?norep=1&store=0", 200, SENT)
    meta = "%7B%22a%22%3A+2%2C+%22b%22%3A+%22qwer%22%7D"
    await expect(hub, "GET", base + f"/%22hey%22?meta={meta}", 200, SENT)
    for message in ("5", "true", "%5B%22hi%22%2C%20%22hi2%22%2C%20%22hi3%22%5D"):
        await expect(hub, "GET", f"{base}/{message}", 200, SENT)
    # object_via_get, object_via_post, mixed_via_post
    await expect(
        hub,
        "GET",
        base + "/%7B%22name%22%3A%20%22Alex%22%2C%20%22online%22%3A%20true%7D",
        200,
        SENT,
    )
    await expect(hub, "POST", base, 200, SENT, body='{"name": "Alex", "online": true}')
    await expect(hub, "POST", base, 200, SENT, body='"hi"')


async def test_compressed_post_is_accepted(hub: HubHandle) -> None:
    """The SDK's should_compress sends zlib data labelled gzip; real gzip works too."""
    base = f"/publish/{PK}/{SK}/0/zipped/0"
    zlib_body = zlib.compress(b'{"z": "zlib"}', 2)
    await expect(hub, "POST", base, 200, SENT, body=zlib_body, headers={"Content-Encoding": "gzip"})
    gzip = zlib.compressobj(wbits=31)
    gzip_body = gzip.compress(b'{"z": "gzip"}') + gzip.flush()
    await expect(hub, "POST", base, 200, SENT, body=gzip_body, headers={"Content-Encoding": "gzip"})
    history = await expect(
        hub,
        "GET",
        f"/v3/history/sub-key/{SK}/channel/zipped",
        200,
        {
            "status": 200,
            "channels": {"zipped": [{"message": dict, "timetoken": TT}]},
            "error_message": "",
            "error": False,
        },
    )
    assert [m["message"] for m in history["channels"]["zipped"]] == [{"z": "zlib"}, {"z": "gzip"}]


async def test_signal(hub: HubHandle) -> None:
    await expect(
        hub, "GET", "/signal/demo/demo/0/unique_sync/0/%22test%22?uuid=uuid-mock", 200, SENT
    )


# -- subscribe (asyncio/subscription/sub_unsub, sub_pub_unsub, join_leave) -------------------

ENVELOPE_KEYS = {"a", "b", "c", "cmt", "d", "e", "f", "i", "k", "o", "p", "s", "u"}


def assert_envelope(envelope: dict[str, Any], channel: str) -> None:
    """Required fields exactly typed; nothing outside PubNub's envelope vocabulary."""
    assert set(envelope) <= ENVELOPE_KEYS, sorted(envelope)
    assert envelope["f"] == 0
    assert envelope["k"] == SK and envelope["c"] == channel and "d" in envelope
    assert_shape(envelope["p"], {"t": TT, "r": int})


async def test_subscribe_handshake_poll_and_presence(hub: HubHandle) -> None:
    handshake = await expect(
        hub,
        "GET",
        f"/v2/subscribe/{SK}/ch,ch-pnpres/0?tt=0&uuid=listener",
        200,
        {"t": {"t": TT, "r": int}, "m": []},
    )
    cursor = handshake["t"]["t"]
    await expect(hub, "GET", f"/publish/{PK}/{SK}/0/ch/0/%22hey%22?uuid=talker", 200, SENT)
    polled = await expect(
        hub,
        "GET",
        f"/v2/subscribe/{SK}/ch,ch-pnpres/0?tt={cursor}&tr=1&ee=1&uuid=listener",
        200,
        {"t": {"t": TT, "r": int}, "m": [dict]},
    )
    join, message = polled["m"]
    assert_envelope(join, "ch-pnpres")
    assert_shape(
        join["d"],
        {
            "action": "join",
            "timestamp": int,
            "precise_timestamp": int,
            "uuid": "listener",
            "occupancy": 1,
        },
    )
    assert_envelope(message, "ch")
    assert (message["d"], message["i"]) == ("hey", "talker")
    assert int(message["p"]["t"]) <= int(polled["t"]["t"])

    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/ch/leave?uuid=listener",
        200,
        {"status": 200, "action": "leave", "message": "OK", "service": "Presence"},
    )
    after = await expect(
        hub,
        "GET",
        f"/v2/subscribe/{SK}/ch-pnpres/0?tt={polled['t']['t']}&uuid=other",
        200,
        {"t": {"t": TT, "r": int}, "m": [dict]},
    )
    assert after["m"][0]["d"]["action"] == "leave"


async def test_wildcard_subscribe_marks_the_match(hub: HubHandle) -> None:
    handshake = await expect(
        hub,
        "GET",
        f"/v2/subscribe/{SK}/device.%2A/0?tt=0&uuid=tui",
        200,
        {"t": {"t": TT, "r": int}, "m": []},
    )
    await expect(hub, "GET", f"/publish/{PK}/{SK}/0/device.web1/0/1", 200, SENT)
    polled = await expect(
        hub,
        "GET",
        f"/v2/subscribe/{SK}/device.*/0?tt={handshake['t']['t']}&uuid=tui",
        200,
        {"t": {"t": TT, "r": int}, "m": [dict]},
    )
    assert_envelope(polled["m"][0], "device.web1")
    assert polled["m"][0]["b"] == "device.*"


# -- presence (asyncio/here_now/*, asyncio/where_now/*, asyncio/state/*) -------------------

PRESENCE_OK = {"status": 200, "message": "OK", "service": "Presence"}


async def test_presence_documents(hub: HubHandle) -> None:
    for channel in ("test-here-now-asyncio-ch1", "test-here-now-asyncio-ch2"):
        await expect(
            hub,
            "GET",
            f"/v2/presence/sub-key/{SK}/channel/{channel}/heartbeat?heartbeat=12&uuid=uuid1",
            200,
            PRESENCE_OK,
        )
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-here-now-asyncio-ch1?uuid=x",
        200,
        {**PRESENCE_OK, "uuids": ("uuid1",), "occupancy": 1},
    )
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-here-now-asyncio-ch1?state=1",
        200,
        {**PRESENCE_OK, "uuids": ({"uuid": "uuid1"},), "occupancy": 1},
    )
    multiple = {
        **PRESENCE_OK,
        "payload": {
            "channels": {
                "test-here-now-asyncio-ch1": {"uuids": ("uuid1",), "occupancy": 1},
                "test-here-now-asyncio-ch2": {"uuids": ("uuid1",), "occupancy": 1},
            },
            "total_channels": 2,
            "total_occupancy": 2,
        },
    }
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-here-now-asyncio-ch1,test-here-now-asyncio-ch2",
        200,
        multiple,
    )
    await expect(hub, "GET", f"/v2/presence/sub-key/{SK}?uuid=x", 200, multiple)
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/uuid/uuid1",
        200,
        {
            **PRESENCE_OK,
            "payload": {"channels": ("test-here-now-asyncio-ch1", "test-here-now-asyncio-ch2")},
        },
    )
    state = "%7B%22count%22%3A+5%2C+%22name%22%3A+%22Alex%22%7D"
    stored = {"count": 5, "name": "Alex"}
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-state-asyncio-ch/uuid/test-state-asyncio-uuid"
        f"/data?state={state}",
        200,
        {**PRESENCE_OK, "payload": stored},
    )
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-state-asyncio-ch/uuid/test-state-asyncio-uuid",
        200,
        {
            **PRESENCE_OK,
            "uuid": "test-state-asyncio-uuid",
            "payload": stored,
            "channel": "test-state-asyncio-ch",
        },
    )
    await expect(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/test-state-asyncio-ch,other/uuid/test-state-asyncio-uuid",
        200,
        {
            **PRESENCE_OK,
            "uuid": "test-state-asyncio-uuid",
            "payload": {"channels": {"test-state-asyncio-ch": stored, "other": {}}},
        },
    )


# -- App Context (asyncio/objects_v2/*, native_sync/metadata/*) -----------------------------

UUID_FULL = {
    "id": "someuuid",
    "name": "Some name",
    "externalId": "1234",
    "profileUrl": "http://example.com",
    "email": "test@example.com",
    "type": None,
    "status": None,
    "custom": {"key1": "val1", "key2": "val2"},
    "updated": ISO_MICROS,
    "eTag": ETAG,
}


async def test_uuid_metadata_documents(hub: HubHandle) -> None:
    body = json.dumps(
        {
            "name": "Some name",
            "email": "test@example.com",
            "externalId": "1234",
            "profileUrl": "http://example.com",
            "custom": {"key1": "val1", "key2": "val2"},
        }
    )
    path = f"/v2/objects/{SK}/uuids/someuuid"
    await expect(
        hub,
        "PATCH",
        path + "?include=custom%2Cstatus%2Ctype",
        200,
        {"status": 200, "data": UUID_FULL},
        JSON,
        body,
    )
    await expect(
        hub,
        "GET",
        path + "?include=custom%2Cstatus%2Ctype",
        200,
        {"status": 200, "data": UUID_FULL},
        JSON,
    )
    without_custom = {key: value for key, value in UUID_FULL.items() if key != "custom"}
    await expect(
        hub,
        "GET",
        path + "?include=status%2Ctype",
        200,
        {"status": 200, "data": without_custom},
        JSON,
    )
    await expect(
        hub,
        "GET",
        f"/v2/objects/{SK}/uuids?count=True&include=custom%2Cstatus%2Ctype"
        "&limit=10&sort=id%3Aasc%2Cupdated%3Adesc",
        200,
        {"status": 200, "data": [UUID_FULL], "totalCount": 1},
        JSON,
    )
    await expect(hub, "DELETE", path, 200, {"status": 200, "data": None}, JSON)
    await expect(
        hub,
        "GET",
        f"/v2/objects/{SK}/uuids?include=custom%2Cstatus%2Ctype",
        200,
        {"status": 200, "data": []},
        JSON,
    )


async def test_channel_metadata_and_etag_precondition(hub: HubHandle) -> None:
    path = f"/v2/objects/{SK}/channels/somechannelid?include=status%2Ctype"
    first = await expect(
        hub,
        "PATCH",
        path,
        200,
        {
            "status": 200,
            "data": {
                "id": "somechannelid",
                "name": "Some name",
                "description": None,
                "type": None,
                "status": None,
                "updated": ISO_MICROS,
                "eTag": ETAG,
            },
        },
        JSON,
        '{"name": "Some name", "description": null, "status": null, "type": null, "custom": null}',
    )
    etag = first["data"]["eTag"]
    update = '{"name": "Some name-2", "description": null, "status": null, "type": null}'
    second = await expect(
        hub, "PATCH", path, 200, {"status": 200, "data": dict}, JSON, update, {"If-Match": etag}
    )
    assert second["data"]["eTag"] != etag
    # asyncio/objects_v2/channel/if_matches_etag: a stale eTag is refused with 412.
    await expect(
        hub,
        "PATCH",
        path,
        412,
        {
            "status": 412,
            "error": {
                "message": "Channel to update has been modified after it was read.",
                "source": "objects",
            },
        },
        JSON,
        update,
        {"If-Match": etag},
    )


async def test_members_documents(hub: HubHandle) -> None:
    path = f"/v2/objects/{SK}/channels/value1/uuids"
    body = json.dumps(
        {"set": [{"uuid": {"id": "mg"}}, {"uuid": {"id": "mg3"}, "custom": {"a": 1}}], "delete": []}
    )
    member = {"uuid": {"id": str}, "updated": ISO_MICROS, "eTag": ETAG}
    await expect(hub, "PATCH", path, 200, {"status": 200, "data": [member]}, JSON, body)
    page = await expect(
        hub,
        "GET",
        path + "?count=True&include=custom&limit=1",
        200,
        {
            "status": 200,
            "data": [{"uuid": {"id": "mg"}, "custom": None, "updated": ISO_MICROS, "eTag": ETAG}],
            "totalCount": 2,
            "next": "MQ",
        },
        JSON,
    )
    await expect(
        hub,
        "GET",
        path + f"?include=custom&limit=1&start={page['next']}",
        200,
        {
            "status": 200,
            "data": [
                {"uuid": {"id": "mg3"}, "custom": {"a": 1}, "updated": ISO_MICROS, "eTag": ETAG}
            ],
            "prev": "MA",
        },
        JSON,
    )
    await expect(
        hub,
        "GET",
        f"/v2/objects/{SK}/uuids/mg3/channels?include=custom",
        200,
        {
            "status": 200,
            "data": [
                {
                    "channel": {"id": "value1"},
                    "custom": {"a": 1},
                    "updated": ISO_MICROS,
                    "eTag": ETAG,
                }
            ],
        },
        JSON,
    )


# -- File Sharing (asyncio/file_upload/*) --------------------------------------------------


async def test_file_documents(hub: HubHandle) -> None:
    generated = await expect(
        hub,
        "POST",
        f"/v1/files/{SK}/channels/files_asyncio_ch/generate-upload-url",
        200,
        {
            "status": 200,
            "data": {"id": str, "name": "king_arthur.txt"},
            "file_upload_request": {
                "url": str,
                "method": "POST",
                "expiration_date": ISO_SECONDS,
                "form_fields": [{"key": str, "value": str}],
            },
        },
        JSON,
        '{"name": "king_arthur.txt"}',
    )
    request = generated["file_upload_request"]
    assert request["url"].startswith(hub.url + "/")
    form = aiohttp.FormData()
    for field in request["form_fields"]:
        form.add_field(field["key"], field["value"])
    form.add_field("file", b"Knights who say Ni!", filename="king_arthur.txt")
    async with aiohttp.ClientSession() as session, session.post(request["url"], data=form) as sent:
        assert sent.status == 204
        assert sent.headers["Location"].startswith(hub.url + "/")
    file_id = generated["data"]["id"]

    file_message = {
        "message": {"test_message": "test"},
        "file": {"id": file_id, "name": "king_arthur.txt"},
    }
    message = quote(json.dumps(file_message), safe="~")
    await expect(
        hub,
        "GET",
        f"/v1/files/publish-file/{PK}/{SK}/0/files_asyncio_ch/0/{message}"
        "?meta=null&store=1&ttl=222",
        200,
        SENT,
    )
    await expect(
        hub,
        "GET",
        f"/v1/files/{SK}/channels/files_asyncio_ch/files",
        200,
        {
            "status": 200,
            "data": [
                {"name": "king_arthur.txt", "id": file_id, "size": 19, "created": ISO_SECONDS}
            ],
            "next": None,
            "count": 1,
        },
        JSON,
    )
    status, _, headers = await http(
        hub, "GET", f"/v1/files/{SK}/channels/files_asyncio_ch/files/{file_id}/king_arthur.txt"
    )
    assert status == 307 and headers["Location"].startswith(hub.url + "/")
    async with aiohttp.ClientSession() as session, session.get(headers["Location"]) as download:
        assert download.status == 200 and await download.read() == b"Knights who say Ni!"
    await expect(
        hub,
        "DELETE",
        f"/v1/files/{SK}/channels/files_asyncio_ch/files/{file_id}/king_arthur.txt",
        200,
        {"status": 200},
        JSON,
    )


# -- history (native_sync/fetch_messages/*, asyncio/history/*) -----------------------------


async def test_history_documents(hub: HubHandle) -> None:
    channel = "fetch-messages-actions-meta-1"
    for meta in (
        "%7B%22is-this%22%3A+%22krusty-krab%22%7D",
        "%7B%22this-is%22%3A+%22patrick%22%7D",
    ):
        await expect(
            hub,
            "GET",
            f"/publish/{PK}/{SK}/0/{channel}/0/%22hey-meta%22?meta={meta}&uuid=u1",
            200,
            SENT,
        )
    v3 = f"/v3/history-with-actions/sub-key/{SK}/channel/{channel}"
    with_meta = await expect(
        hub,
        "GET",
        v3 + "?include_meta=true&max=25",
        200,
        {
            "status": 200,
            "channels": {channel: [{"message": "hey-meta", "timetoken": TT, "meta": dict}]},
            "error_message": "",
            "error": False,
        },
    )
    assert [m["meta"] for m in with_meta["channels"][channel]] == [
        {"is-this": "krusty-krab"},
        {"this-is": "patrick"},
    ]
    await expect(
        hub,
        "GET",
        v3 + "?include_meta=false&include_uuid=true&max=25",
        200,
        {
            "status": 200,
            "channels": {channel: [{"message": "hey-meta", "timetoken": TT, "uuid": "u1"}]},
            "error_message": "",
            "error": False,
        },
    )
    await expect(
        hub,
        "GET",
        v3 + "?include_message_type=true&include_meta=false&max=25",
        200,
        {
            "status": 200,
            "channels": {channel: [{"message": "hey-meta", "timetoken": TT, "message_type": None}]},
            "error_message": "",
            "error": False,
        },
    )
    await expect(
        hub,
        "GET",
        f"/v2/history/sub-key/{SK}/channel/{channel}?count=100",
        200,
        (["hey-meta"], int, int),
    )
    await expect(hub, "GET", f"/v2/history/sub-key/{SK}/channel/empty?count=100", 200, ([], 0, 0))
    await expect(
        hub,
        "DELETE",
        f"/v3/history/sub-key/{SK}/channel/my-ch-%20%7C.%2A%20%24?end=456&start=123",
        200,
        {"status": 200, "error": False, "error_message": ""},
    )
