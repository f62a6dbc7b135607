"""PubNub Access Manager: the config's `auth_key` (a PAM v2 auth key or a v3 token) reaches
every request the programs send, and never the check scripts.

A stand-in origin records the query strings (the local hub has no access control: it is a
loopback development backend, see docs/SECURITY.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from reflex_agent.daemon import Agent, script_env
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import load_config

pytestmark = pytest.mark.timeout(30)

TOKEN = "p0F2AkF0GmZ-token-for-tests"


@pytest.fixture
async def origin() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, list[str]]]]]]:
    """A minimal PubNub-shaped origin: answers publish and time, records (path, query)."""
    seen: list[tuple[str, dict[str, list[str]]]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.path, parse_qs(request.query_string)))
        if request.path.startswith("/publish/"):
            return web.Response(text=json.dumps([1, "Sent", "17000000000000000"]))
        if request.path.startswith("/time/"):
            return web.Response(text="[17000000000000000]")
        return web.Response(status=404, text="{}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_auth_key_from_the_config_is_sent_with_requests(
    tmp_path: Path, origin: tuple[str, list[tuple[str, dict[str, list[str]]]]]
) -> None:
    address, seen = origin
    config_file = tmp_path / "config.ini"
    config_file.write_text(
        f"pub = pub-c-real\nsub = sub-c-real\norigin = {address}\nssl = false\n"
        f"auth_key = {TOKEN}\nname = web1\nstate_dir = {tmp_path}\n"
    )
    config = load_config(config_file, env={}).config
    agent = Agent(config)
    assert agent.bus.settings.auth_key == TOKEN
    assert BusSettings.from_config(config, user_id="dashboard").auth_key == TOKEN

    bus = Bus(BusSettings.from_config(config, user_id="web1"))
    await bus.start()
    try:
        await bus.publish("device.web1", {"v": 1})
    finally:
        await bus.close()
    publishes = [query for path, query in seen if path.startswith("/publish/")]
    assert publishes and all(query.get("auth") == [TOKEN] for query in publishes)


def test_scripts_never_see_the_keys() -> None:
    env = {
        "PATH": "/usr/bin",
        "REFLEX_AUTH_KEY": TOKEN,
        "REFLEX_CIPHER_KEY": "secret",
        "REFLEX_PUB": "pub-c-x",
        "REFLEX_SUB": "sub-c-x",
    }
    assert script_env(env) == {"PATH": "/usr/bin"}
