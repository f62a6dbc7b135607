"""Presence through the real SDK plus raw long-polls: joins, state, leave, timeouts."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from reflex_hub import HubHandle

from .support import WAIT, PubNubFactory, http, next_item, subscribed

SK = "sub-c-reflex-test"


async def test_join_here_now_where_now_state_and_leave(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    watcher = make_pubnub(hub, "watcher")
    events = await subscribed(watcher, ["ignore"], with_presence=True)
    own = await next_item(events.presence_events, lambda e: e.uuid == "watcher")
    assert (own.event, own.channel, own.occupancy) == ("join", "ignore", 1)

    # An agent configured like the product's: heartbeats on, leave on unsubscribe.
    agent = make_pubnub(hub, "agent-1", enable_presence_heartbeat=True, presence_timeout=60)
    await subscribed(agent, ["ignore"])
    join = await next_item(events.presence_events, lambda e: e.uuid == "agent-1")
    assert (join.event, join.occupancy) == ("join", 2)
    assert isinstance(join.timestamp, int) and isinstance(join.timetoken, int)

    here = await watcher.here_now().channels("ignore").future()
    assert here.result.total_occupancy == 2
    assert {o.uuid for o in here.result.channels[0].occupants} == {"watcher", "agent-1"}
    where = await watcher.where_now().uuid("agent-1").future()
    assert where.result.channels == ["ignore"]

    state_set = await agent.set_state().channels("ignore").state({"mood": "ok"}).future()
    assert state_set.result.state == {"mood": "ok"}
    change = await next_item(events.presence_events, lambda e: e.event == "state-change")
    assert (change.uuid, change.state) == ("agent-1", {"mood": "ok"})
    got = await watcher.get_state().channels("ignore").uuid("agent-1").future()
    assert got.result.channels == {"ignore": {"mood": "ok"}}
    with_state = await watcher.here_now().channels("ignore").include_state(True).future()
    states = {o.uuid: o.state for o in with_state.result.channels[0].occupants}
    assert states == {"watcher": None, "agent-1": {"mood": "ok"}}

    agent.unsubscribe_all()
    leave = await next_item(events.presence_events, lambda e: e.uuid == "agent-1")
    assert (leave.event, leave.occupancy) == ("leave", 1)
    where = await watcher.where_now().uuid("agent-1").future()
    assert where.result.channels == []


async def test_here_now_multiple_and_global(hub: HubHandle, make_pubnub: PubNubFactory) -> None:
    client = make_pubnub(hub, "multi")
    await subscribed(client, ["room-a", "room-b"])
    both = await client.here_now().channels(["room-a", "room-b", "room-c"]).future()
    assert both.result.total_channels == 2 and both.result.total_occupancy == 2
    assert {c.channel_name for c in both.result.channels} == {"room-a", "room-b"}
    everywhere = await client.here_now().future()
    assert {c.channel_name for c in everywhere.result.channels} >= {"room-a", "room-b"}
    empty = await client.here_now().channels("room-c").future()
    assert empty.result.total_occupancy == 0


async def _handshake(hub: HubHandle, uuid: str, channels: str, heartbeat: float) -> str:
    status, body, _ = await http(
        hub, "GET", f"/v2/subscribe/{SK}/{channels}/0?tt=0&uuid={uuid}&heartbeat={heartbeat}"
    )
    assert status == 200
    return str(body["t"]["t"])


async def _long_poll(hub: HubHandle, uuid: str, channels: str, cursor: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub.url}/v2/subscribe/{SK}/{channels}/0?tt={cursor}&uuid={uuid}&heartbeat=0.3"
        ) as response,
    ):
        await response.read()
        return response.status


async def test_held_poll_keeps_presence_and_abandoned_poll_times_out(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    hub.core.config.presence_sweep_seconds = 0.05
    watcher = make_pubnub(hub, "watcher")
    events = await subscribed(watcher, ["ignore"], with_presence=True)
    keyspace = hub.core.keyspace(SK)

    # "steady" holds a long-poll; "ghost" starts one and then drops the connection.
    # The handshakes use a long timeout so nobody can time out before its poll
    # starts; the polls then shorten it to 0.3 s (the latest heartbeat wins).
    steady_cursor = await _handshake(hub, "steady", "ignore,steady-own", 300)
    steady = asyncio.create_task(_long_poll(hub, "steady", "ignore,steady-own", steady_cursor))
    ghost_cursor = await _handshake(hub, "ghost", "ignore,ghost-own", 300)
    ghost = asyncio.create_task(_long_poll(hub, "ghost", "ignore,ghost-own", ghost_cursor))
    async with asyncio.timeout(WAIT):
        await keyspace.wait_for_waiters(
            lambda ks: ks.waiters_on("steady-own") == 1 and ks.waiters_on("ghost-own") == 1
        )
    ghost.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ghost

    # The hub notices the dropped poll (handler cancelled) and, one heartbeat
    # period later, reports the ghost as timed out.
    timeout = await next_item(
        events.presence_events, lambda e: e.uuid == "ghost" and e.event == "timeout"
    )
    assert timeout.channel == "ignore"
    assert keyspace.waiters_on("ghost-own") == 0
    # "steady" has the same short heartbeat but its poll is still open: still present.
    here = await watcher.here_now().channels("ignore").future()
    assert {o.uuid for o in here.result.channels[0].occupants} == {"watcher", "steady"}

    steady.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await steady
    gone = await next_item(
        events.presence_events, lambda e: e.uuid == "steady" and e.event == "timeout"
    )
    assert gone.occupancy == 1


async def test_heartbeat_endpoint_honours_its_timeout(
    hub: HubHandle, make_pubnub: PubNubFactory
) -> None:
    hub.core.config.presence_sweep_seconds = 0.05
    watcher = make_pubnub(hub, "watcher")
    events = await subscribed(watcher, ["ignore"], with_presence=True)
    status, body, _ = await http(
        hub,
        "GET",
        f"/v2/presence/sub-key/{SK}/channel/ignore/heartbeat?heartbeat=0.3&uuid=blip"
        "&state=%7B%22ignore%22%3A%7B%22v%22%3A1%7D%7D",
    )
    assert (status, body) == (200, {"status": 200, "message": "OK", "service": "Presence"})
    join = await next_item(events.presence_events, lambda e: e.uuid == "blip")
    assert (join.event, join.state) == ("join", {"v": 1})
    timeout = await next_item(events.presence_events, lambda e: e.uuid == "blip")
    assert timeout.event == "timeout"


async def test_long_poll_is_answered_empty_at_the_hold_limit(hub: HubHandle) -> None:
    hub.core.config.longpoll_seconds = 0.1
    cursor = await _handshake(hub, "idle", "quiet", 300)
    status, body, _ = await http(hub, "GET", f"/v2/subscribe/{SK}/quiet/0?tt={cursor}&uuid=idle")
    assert status == 200
    assert body["m"] == [] and int(body["t"]["t"]) >= int(cursor)


async def test_stopping_the_hub_answers_held_polls(hub: HubHandle) -> None:
    cursor = await _handshake(hub, "holder", "held", 300)
    poll = asyncio.create_task(_long_poll(hub, "holder", "held", cursor))
    keyspace = hub.core.keyspace(SK)
    async with asyncio.timeout(WAIT):
        await keyspace.wait_for_waiters(lambda ks: ks.waiters_on("held") == 1)
        await hub.stop()
        assert await poll == 200
