"""Errors: PubNub-shaped JSON for every refusal, never a 500, an HTML page or a hang."""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
from urllib.parse import quote

import aiohttp

from reflex_hub import HubHandle

from .support import WAIT, HubFactory, PubNubFactory, http

PK = "pub-c-errors"
SK = "sub-c-errors"
TT = re.compile(r"\d{17}")


def assert_publish_error(status: int, body: object, reason: str) -> None:
    assert status == 400
    assert isinstance(body, list) and body[:2] == [0, reason] and TT.fullmatch(body[2])


async def test_oversized_message_is_refused_get_post_and_sdk(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    big = json.dumps("x" * (32 * 1024))
    status, body, _ = await http(hub, "GET", f"/publish/{PK}/{SK}/0/ch/0/{quote(big)}")
    assert_publish_error(status, body, "Message Too Large")
    status, body, _ = await http(hub, "POST", f"/publish/{PK}/{SK}/0/ch/0", body=big)
    assert_publish_error(status, body, "Message Too Large")
    # Just under the cap is fine, even percent-encoded into a ~96 KiB request line.
    fits = json.dumps("é" * 16000, ensure_ascii=False)
    status, body, _ = await http(hub, "GET", f"/publish/{PK}/{SK}/0/ch/0/{quote(fits)}")
    assert status == 200

    client = make_pubnub(hub, "big-talker")
    result = await client.publish().channel("ch").message("x" * 33000).future()
    assert result.status.is_error() and result.status.status_code == 400
    assert "Message Too Large" in str(result.status.error_data.information)

    status, body, _ = await http(
        hub, "GET", f"/signal/{PK}/{SK}/0/ch/0/{quote(json.dumps('s' * 80))}"
    )
    assert_publish_error(status, body, "Message Too Large")


async def test_invalid_json_is_refused(hub: HubHandle) -> None:
    for path in (
        f"/publish/{PK}/{SK}/0/ch/0/%7Bbad",
        f"/publish/{PK}/{SK}/0/ch/0/NaN",
        f"/publish/{PK}/{SK}/0/ch/0/%FF%FE",
        f"/publish/{PK}/{SK}/0/ch/0/1?meta=%7Bnope",
    ):
        status, body, _ = await http(hub, "GET", path)
        assert status == 400 and body[0] == 0, (path, body)
    status, body, _ = await http(hub, "POST", f"/publish/{PK}/{SK}/0/ch/0", body=b"{bad")
    assert_publish_error(status, body, "Invalid JSON")
    status, body, _ = await http(
        hub,
        "POST",
        f"/publish/{PK}/{SK}/0/ch/0",
        body=b"not compressed",
        headers={"Content-Encoding": "gzip"},
    )
    assert_publish_error(status, body, "Invalid Compressed Body")
    status, body, headers = await http(hub, "PATCH", f"/v2/objects/{SK}/uuids/u", body=b"{nope")
    assert status == 400 and body["error"]["source"] == "objects"
    assert headers["Content-Type"] == "application/json"


async def test_wrong_keys_are_refused_when_keys_are_enforced(
    hub_factory: HubFactory, make_pubnub: PubNubFactory
) -> None:
    hub = await hub_factory(memory=True, pub_key="pub-c-right", sub_key="sub-c-right")
    status, body, _ = await http(hub, "GET", "/publish/pub-c-wrong/sub-c-right/0/ch/0/1")
    assert_publish_error(status, body, "Invalid Key")
    status, body, _ = await http(hub, "GET", "/publish/pub-c-right/sub-c-right/0/ch/0/1")
    assert status == 200
    invalid_sub_key = {
        "message": "Invalid Subscribe Key",
        "error": True,
        "service": "Access Manager",
        "status": 400,
    }
    for method, path in (
        ("GET", "/v2/subscribe/sub-c-wrong/ch/0?tt=0"),
        ("GET", "/v2/presence/sub-key/sub-c-wrong/channel/ch"),
        ("GET", "/v3/history/sub-key/sub-c-wrong/channel/ch"),
        ("GET", "/v2/objects/sub-c-wrong/uuids/u"),
        ("GET", "/v1/files/sub-c-wrong/channels/ch/files"),
    ):
        status, body, _ = await http(hub, method, path)
        assert (status, body) == (400, invalid_sub_key), path

    # The SDK reports the refusal as an error status instead of crashing on it.
    stranger = make_pubnub(hub, "stranger", publish_key="pub-c-wrong", subscribe_key="sub-c-wrong")
    published = await stranger.publish().channel("ch").message(1).future()
    assert published.status.is_error() and published.status.status_code == 400
    members = await stranger.get_channel_members().channel("ch").future()
    assert members.status.is_error() and members.status.status_code == 400


async def _upload(hub: HubHandle, size: int, token: str | None = None) -> tuple[int, object]:
    status, generated, _ = await http(
        hub, "POST", f"/v1/files/{SK}/channels/config/generate-upload-url", body='{"name": "a.bin"}'
    )
    assert status == 200
    request = generated["file_upload_request"]
    form = aiohttp.FormData()
    for field in request["form_fields"]:
        value = (
            token if token is not None and field["key"] == "x-hub-upload-token" else field["value"]
        )
        form.add_field(field["key"], value)
    form.add_field("file", io.BytesIO(b"\0" * size), filename="a.bin")
    async with (
        aiohttp.ClientSession() as session,
        session.post(request["url"], data=form) as response,
    ):
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


async def test_file_size_limit(hub: HubHandle) -> None:
    status, body = await _upload(hub, 5 * 1024 * 1024 + 1)
    assert status == 400 and body["error"]["source"] == "files"
    assert "maximum allowed size" in body["error"]["message"]
    status, _ = await _upload(hub, 5 * 1024 * 1024)
    assert status == 204
    status, body = await _upload(hub, 10, token="forged")
    assert status == 403 and body["status"] == 403


async def test_malformed_requests_get_json_400s(hub: HubHandle) -> None:
    cases = [
        ("GET", f"/v2/subscribe/{SK}/%FF%FE/0?tt=0", 400),
        ("GET", f"/v2/subscribe/{SK}/ch/0?tt=abc", 400),
        ("GET", f"/v2/subscribe/{SK}/ch/0?tt=999999999999999999999999", 400),
        ("GET", f"/v2/subscribe/{SK}/ch/0?tt=0&heartbeat=soon", 400),
        ("GET", f"/v2/subscribe/{SK}/ch/0?tt=0&state=%5B1%5D", 400),
        ("GET", f"/v2/subscribe/{SK}/,/0?tt=0&channel-group=g", 400),
        ("GET", f"/v2/presence/sub-key/{SK}/channel/ch/uuid/u/data?state=%5B%5D", 400),
        ("GET", f"/v2/presence/sub-key/{SK}/channel/ch/heartbeat", 400),
        ("GET", f"/v2/objects/{SK}/uuids?filter=name%3D%3D%27x%27", 400),
        ("GET", f"/v2/objects/{SK}/uuids?start=%25%25", 400),
        ("GET", f"/v2/objects/{SK}/uuids?sort=shoe%3Aasc", 400),
        ("GET", f"/v3/history/sub-key/{SK}/channel/ch?start=yesterday", 400),
        ("GET", f"/v1/files/{SK}/channels/ch/files?next=%25", 400),
        ("POST", f"/v1/files/{SK}/channels/ch/generate-upload-url", 400),
        ("POST", "/_hub/files/upload", 400),
        ("GET", "/no/such/endpoint", 404),
        ("DELETE", "/time/0", 405),
    ]
    for method, path, expected in cases:
        status, body, headers = await http(hub, method, path)
        assert status == expected, (method, path, status, body)
        assert isinstance(body, dict | list), (method, path, body)
        assert headers["Content-Type"] in ('text/javascript; charset="UTF-8"', "application/json")


async def test_fuzzed_paths_never_500_or_hang(hub: HubHandle) -> None:
    """Mutations of real endpoint paths: any answer is fine except a 500 or a non-JSON body."""
    hub.core.config.longpoll_seconds = 0.05
    templates = [
        "/time/0",
        f"/publish/{PK}/{SK}/0/ch/0/%22m%22",
        f"/signal/{PK}/{SK}/0/ch/0/1",
        f"/v2/subscribe/{SK}/a,b-pnpres,c.%2A/0?tt=1&uuid=u&heartbeat=5",
        f"/v2/presence/sub-key/{SK}/channel/a,b/uuid/u/data?state=%7B%7D",
        f"/v2/presence/sub-key/{SK}/uuid/u",
        f"/v2/objects/{SK}/channels/ch/uuids?include=custom,uuid&limit=2&count=true",
        f"/v2/objects/{SK}/uuids/u/channels?start=MQ",
        f"/v1/files/{SK}/channels/ch/files/id/name",
        f"/v1/files/publish-file/{PK}/{SK}/0/ch/0/%7B%7D",
        f"/v3/history/sub-key/{SK}/channel/a,b?max=3&start=1&end=2",
        f"/v2/history/sub-key/{SK}/channel/a?reverse=true&count=0",
    ]
    alphabet = "/%?&=,.*-_aZ09\"'{}[]:+~ \\#"
    rng = random.Random(20240601)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        for _ in range(300):
            path = list(rng.choice(templates))
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(path))
                action = rng.random()
                if action < 0.4:
                    path[position] = rng.choice(alphabet)
                elif action < 0.7:
                    path.insert(position, rng.choice(alphabet))
                else:
                    del path[position]
            target = "/" + "".join(path).lstrip("/").replace(" ", "%20").replace("#", "%23")
            method = rng.choice(["GET", "GET", "POST", "PATCH", "DELETE"])
            async with session.request(method, hub.url + target, data=b"{}") as response:
                raw = await response.read()
                assert response.status != 500, (method, target, raw)
                if response.status not in (204, 307) and not target.startswith("/_hub/files/"):
                    json.loads(raw)


async def test_unparsable_http_gets_json_too(hub: HubHandle) -> None:
    """Requests aiohttp rejects before routing (bad header syntax) still get a JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        writer.write(b"GET /time/0 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(WAIT):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["status"] == 400
