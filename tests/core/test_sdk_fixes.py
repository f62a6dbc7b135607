"""PubNub SDK 10.8.0 defects, confirmed against a local hub with the raw SDK.

Each `test_defect_*` asserts that the defect is STILL THERE in the installed SDK. When one of
them fails after an SDK upgrade, the matching workaround in `reflex_core.sdk_fixes` /
`reflex_core.bus` (named in the test's docstring) can probably be removed. The facade-level
tests in `test_bus.py` / `test_bus_reconnect.py` show the fixed behaviour; here the
`PNEventEmitter` patch is also shown to fix the raw SDK (the unpatched run is a subprocess,
since importing `reflex_core.bus` patches this process).

These tests import `pubnub` on purpose: they are about the SDK itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pubnub.callbacks import SubscribeCallback
from pubnub.crypto import AesCbcCryptoModule
from pubnub.enums import PNReconnectionPolicy, PNStatusCategory
from pubnub.models.subscription import PNEventEmitter
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from reflex_core import sdk_fixes

pytestmark = pytest.mark.timeout(90)

WAIT = 10.0
ABSENCE = 1.5  # how long "never arrives" is watched for on loopback (delivery takes ms)
REPO = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def __call__(self, event: Any) -> None:
        self.items.append(event)
        self._queue.put_nowait(event)

    async def next(
        self, match: Callable[[Any], bool] = lambda e: True, within: float = WAIT
    ) -> Any:
        async with asyncio.timeout(within):
            while True:
                event = await self._queue.get()
                if match(event):
                    return event

    async def absent(self, match: Callable[[Any], bool] = lambda e: True) -> bool:
        """True if nothing matching arrives within ABSENCE seconds."""
        try:
            await self.next(match, within=ABSENCE)
        except TimeoutError:
            return True
        return False


class RawListener(SubscribeCallback):
    def __init__(self) -> None:
        self.statuses = Recorder()
        self.messages = Recorder()
        self.presences = Recorder()
        self.events = Recorder()

    def status(self, pubnub: Any, status: Any) -> None:
        self.statuses(status.category)

    def message(self, pubnub: Any, message: Any) -> None:
        self.messages(message)

    def presence(self, pubnub: Any, presence: Any) -> None:
        self.presences(presence)

    def membership(self, pubnub: Any, membership: Any) -> None:
        self.events(membership)

    def file(self, pubnub: Any, file_message: Any) -> None:
        self.events(file_message)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def raw() -> AsyncIterator[Callable[..., PubNubAsyncio]]:
    """Factory for raw SDK clients (no facade); all are stopped at teardown."""
    clients: list[PubNubAsyncio] = []

    def factory(
        origin: str,
        user_id: str,
        *,
        cipher_key: str | None = None,
        presence: tuple[int, int] | None = None,
        **attrs: Any,
    ) -> PubNubAsyncio:
        config = PNConfiguration()
        config.publish_key = "demo-pub"
        config.subscribe_key = "demo-sub"
        config.user_id = user_id
        config.origin = origin
        config.ssl = False
        config.non_subscribe_request_timeout = 2
        config.connect_timeout = 1
        for name, value in attrs.items():
            setattr(config, name, value)
        if cipher_key:
            config.cipher_key = cipher_key
            config.crypto_module = AesCbcCryptoModule(config)
        if presence:
            config.set_presence_timeout_with_custom_interval(*presence)
        config.disable_config_locking = False  # avoids the SDK's deprecation warning
        client = PubNubAsyncio(config)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        manager = client._subscription_manager
        for engine in (manager.event_engine, manager.presence_engine):
            for effect in list(engine.get_dispatcher()._managed_effects.values()):
                effect.stop()
        await client.stop()
        manager.loop.close()


async def connected(listener: RawListener) -> None:
    await listener.statuses.next(lambda c: c is PNStatusCategory.PNConnectedCategory)


# --------------------------------------------------------------------------- 1. relays


def test_relays_are_applied_idempotently() -> None:
    import reflex_core.bus  # noqa: F401  (importing the facade applies the patch)

    assert sdk_fixes.applied()
    relay = PNEventEmitter.membership
    sdk_fixes.apply()
    sdk_fixes.apply()
    assert PNEventEmitter.membership is relay
    for name in ("uuid", "channel", "membership", "file_message"):
        assert callable(getattr(PNEventEmitter, name))


_RELAY_SCENARIO = r"""
import asyncio, json, sys, uuid
origin, mode = sys.argv[1], sys.argv[2]
if mode == "patched":
    from reflex_core import sdk_fixes
    sdk_fixes.apply()
from pubnub.callbacks import SubscribeCallback
from pubnub.enums import PNStatusCategory
from pubnub.models.consumer.objects_v2.channel_members import PNUserMember
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

def client(user_id):
    config = PNConfiguration()
    config.publish_key, config.subscribe_key = "demo-pub", "demo-sub"
    config.user_id, config.origin, config.ssl = user_id, origin, False
    return PubNubAsyncio(config)

async def scenario(kind, actor):
    channel = f"relay-{kind}-{uuid.uuid4().hex[:8]}"
    watcher = client("watcher")
    seen = {name: asyncio.Event() for name in ("connected", "event", "message", "relayed")}
    if kind == "subscription-api":
        sub = watcher.channel(channel).subscription()
        sub.on_membership = lambda event: seen["relayed"].set()
        sub.on_message = lambda message: seen["message"].set()
    class Listener(SubscribeCallback):
        def status(self, pn, status):
            if status.category is PNStatusCategory.PNConnectedCategory:
                seen["connected"].set()
        def message(self, pn, message):
            if kind != "subscription-api":
                seen["message"].set()
        def presence(self, pn, presence):
            pass
        def membership(self, pn, membership):
            seen["event"].set()
        def file(self, pn, file_message):
            seen["event"].set()
    watcher.add_listener(Listener())
    if kind == "subscription-api":
        sub.subscribe()
    else:
        watcher.subscribe().channels([channel]).execute()
    await asyncio.wait_for(seen["connected"].wait(), 10)
    if kind == "file":
        await actor.send_file().channel(channel).file_name("x.sh").file_object(b"echo").future()
    else:
        await actor.set_channel_members(channel=channel, uuids=[PNUserMember("dev1")]).future()
    await asyncio.wait_for(seen["event"].wait(), 10)
    await actor.publish(channel=channel, message={"after": kind}).future()
    try:
        await asyncio.wait_for(seen["message"].wait(), float(sys.argv[3]))
        delivered = True
    except asyncio.TimeoutError:
        delivered = False
    engine = watcher._subscription_manager.event_engine
    engine.stop()
    for effect in list(engine.get_dispatcher()._managed_effects.values()):
        effect.stop()
    await watcher.stop()
    return delivered, seen["relayed"].is_set()

async def main():
    actor = client("actor")
    result = {}
    for kind in ("membership", "file", "subscription-api"):
        result[kind], relayed = await scenario(kind, actor)
    result["relayed to on_membership"] = relayed
    await actor.stop()
    print(json.dumps(result))

asyncio.run(main())
"""


async def _run_relay_scenario(origin: str, mode: str) -> dict[str, bool]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RELAY_SCENARIO,
        origin,
        mode,
        str(ABSENCE),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return dict(json.loads(stdout.decode().strip().splitlines()[-1]))


async def test_defect_app_context_event_kills_subscription(hub: Any) -> None:
    """`PNSubscriptionRegistryCallback` relays to methods `PNEventEmitter` lacks.

    Workaround: `sdk_fixes.apply()` (the PNEventEmitter relays). Without it, after a
    membership event or a file event no further message is delivered -- through the
    `add_listener` API and through the subscription API alike. With it, both arrive.
    """
    unpatched = await _run_relay_scenario(hub.origin, "unpatched")
    assert unpatched == {
        "membership": False,
        "file": False,
        "subscription-api": False,
        "relayed to on_membership": False,
    }
    patched = await _run_relay_scenario(hub.origin, "patched")
    assert patched == {
        "membership": True,
        "file": True,
        "subscription-api": True,
        "relayed to on_membership": True,
    }


# --------------------------------------------------------------------------- 2. listeners


async def test_defect_listener_exception_kills_loop(hub: Any, raw: Any) -> None:
    """A raising listener ends the subscribe loop. Workaround: emit guard + wrapped callbacks."""
    channel = unique("device.")
    reader, writer = raw(hub.origin, "reader"), raw(hub.origin, "writer")
    listener = RawListener()

    class Raising(SubscribeCallback):
        def status(self, pubnub: Any, status: Any) -> None:
            pass

        def presence(self, pubnub: Any, presence: Any) -> None:
            pass

        def message(self, pubnub: Any, message: Any) -> None:
            raise RuntimeError("listener bug")

    reader.add_listener(listener)
    reader.add_listener(Raising())
    reader.subscribe().channels([channel]).execute()
    await connected(listener)

    engine = reader._subscription_manager.event_engine
    polling = engine.get_dispatcher()._managed_effects["ReceiveMessagesInvocation"].task

    await writer.publish(channel=channel, message={"n": 1}).future()
    await listener.messages.next()
    # The long-poll task that delivered the message died with the listener's exception ...
    async with asyncio.timeout(WAIT):
        await asyncio.wait([polling])
    assert isinstance(polling.exception(), RuntimeError)
    # ... before the next receive invocation was dispatched: the engine says "receiving",
    # but no receive effect exists and nothing polls any more.
    assert engine.get_state_name() == "ReceivingState"
    assert "ReceiveMessagesInvocation" not in engine.get_dispatcher()._managed_effects
    await writer.publish(channel=channel, message={"n": 2}).future()
    assert await listener.messages.absent()


# --------------------------------------------------------------------------- 3. reconnection


class RestartableHub:
    """A data-dir hub on a fixed port that tests can stop and start again (same data)."""

    def __init__(self, hub_factory: Any) -> None:
        self._factory = hub_factory
        self.port = free_port()
        self.origin = f"127.0.0.1:{self.port}"
        self.handle: Any = None

    async def start(self) -> None:
        self.handle = await self._factory(port=self.port)

    async def stop(self) -> None:
        if self.handle is not None:
            await self.handle.stop()
            self.handle = None


@pytest.fixture
async def restartable_hub(hub_factory: Any) -> RestartableHub:
    hub = RestartableHub(hub_factory)
    await hub.start()
    return hub


async def test_defect_exponential_policy_gives_up(
    restartable_hub: RestartableHub, raw: Any
) -> None:
    """The default policy (exponential, 6 retries) gives up and never reconnects by itself.

    Workaround: linear + unlimited retries in `bus._build_config`, and the facade's probe loop
    re-subscribes from ReceiveFailedState. Intervals are shrunk here; with the defaults the
    SDK gives up after ~4 minutes of outage.
    """
    reader = raw(
        restartable_hub.origin,
        "reader",
        reconnection_interval=0.01,
        maximum_reconnection_interval=0.05,
    )
    assert reader.config.reconnect_policy is PNReconnectionPolicy.EXPONENTIAL  # the default
    listener = RawListener()
    reader.add_listener(listener)
    reader.subscribe().channels(["device.*"]).execute()
    await connected(listener)

    await restartable_hub.stop()
    failures = 0
    async with asyncio.timeout(30):
        while reader._subscription_manager.event_engine.get_state_name() != "ReceiveFailedState":
            await listener.statuses.next(
                lambda c: c is PNStatusCategory.PNUnexpectedDisconnectCategory
            )
            failures += 1
    assert 5 <= failures <= 8  # "gives up after ~6 tries"

    await restartable_hub.start()
    writer = raw(restartable_hub.origin, "writer")
    await writer.publish(channel="device.web1", message={"n": 1}).future()
    assert await listener.messages.absent()
    assert PNStatusCategory.PNReconnectedCategory not in listener.statuses.items
    assert reader._subscription_manager.event_engine.get_state_name() == "ReceiveFailedState"


async def test_defect_catch_up_delivered_twice(restartable_hub: RestartableHub, raw: Any) -> None:
    """After a reconnect the SDK re-polls with the old cursor: catch-up arrives twice.

    Workaround: de-duplication on (channel, timetoken) in the facade's emit guard
    (`ReflexSubscriptionManager` (b) + `_Hooks.accept_envelope`). Also: no
    PNReconnectedCategory status is ever emitted by the event engine.
    """
    reader = raw(
        restartable_hub.origin,
        "reader",
        reconnect_policy=PNReconnectionPolicy.LINEAR,
        reconnection_interval=0.1,
        maximum_reconnection_retries=-1,
    )
    writer = raw(restartable_hub.origin, "writer")
    listener = RawListener()
    reader.add_listener(listener)
    reader.subscribe().channels(["device.*"]).execute()
    await connected(listener)
    await writer.publish(channel="device.web1", message={"n": 0}).future()
    await listener.messages.next()

    await restartable_hub.stop()
    await listener.statuses.next(lambda c: c is PNStatusCategory.PNUnexpectedDisconnectCategory)
    await restartable_hub.start()
    await writer.publish(channel="device.web1", message={"n": 1}).future()

    first = await listener.messages.next()
    second = await listener.messages.next()
    assert first.message == second.message == {"n": 1}
    assert first.timetoken == second.timetoken
    assert PNStatusCategory.PNReconnectedCategory not in listener.statuses.items


# --------------------------------------------------------------------------- 4. presence


async def test_defect_no_heartbeat_and_no_leave_by_default(hub: Any, raw: Any) -> None:
    """Default asyncio client: no presence heartbeat, no leave on unsubscribe or stop.

    Workaround: `enable_presence_heartbeat` + timeout/interval in `bus._build_config`, and the
    facade's awaited leave on unsubscribe/close (test_bus.py: leave seen on close()).
    """
    channel = unique("ignore-")
    agent = raw(hub.origin, "agent")
    assert agent.config.enable_presence_heartbeat is False
    watcher_client = raw(hub.origin, "watcher")
    watcher = RawListener()
    watcher_client.add_listener(watcher)
    watcher_client.subscribe().channels([f"{channel}-pnpres"]).execute()
    await connected(watcher)

    listener = RawListener()
    agent.add_listener(listener)
    agent.subscribe().channels([channel]).execute()
    await connected(listener)
    await watcher.presences.next(lambda p: p.event == "join" and p.uuid == "agent")
    assert agent._subscription_manager.presence_engine.get_state_name() == (
        "HeartbeatInactiveState"
    )

    agent.unsubscribe().channels([channel]).execute()
    assert await watcher.presences.absent(lambda p: p.event == "leave")
    stats = hub.stats
    assert stats.get("heartbeat", 0) == 0 and stats.get("leave", 0) == 0


async def test_defect_heartbeat_ignores_later_channels(hub: Any, raw: Any) -> None:
    """Presence heartbeats only ever cover the channels of the first subscribe call.

    Workaround: `ReflexSubscriptionManager.set_heartbeat_channels` (a). The facade's
    counterpart is test_bus.py::test_heartbeats_cover_every_subscribed_channel.
    """
    first, second = unique("hb-a-"), unique("hb-b-")
    client = raw(hub.origin, "agent", enable_presence_heartbeat=True, presence=(20, 5))
    listener = RawListener()
    client.add_listener(listener)
    client.subscribe().channels([first]).execute()
    await connected(listener)
    client.subscribe().channels([second, "dev.*"]).execute()

    presence_channels = client._subscription_manager.presence_engine.get_context().channels
    assert presence_channels == [first]
    with pytest.raises(ValueError):  # and leaving a channel it lost track of raises
        client.unsubscribe().channels([second]).execute()


# --------------------------------------------------------------------------- 5. files, crypto


async def test_defect_download_error_is_attribute_error(hub: Any, raw: Any) -> None:
    """A failing step of the SDK's file helpers surfaces as a bare AttributeError.

    Workaround: `sdk_fixes.GuardedDownloadFile` / `GuardedSendFile` (the facade raises a
    BusError with HTTP 404; test_bus.py::test_files_send_list_download_delete).
    """
    client = raw(hub.origin, "agent")
    with pytest.raises(AttributeError):
        await client.download_file().channel("config").file_id("nope").file_name("x.sh").future()


async def test_defect_history_decrypt_fails_whole_fetch(hub: Any, raw: Any) -> None:
    """With decrypt_messages=True one unencrypted entry fails the whole fetch (TypeError).

    Workaround: the facade fetches raw and decrypts per entry (`Bus._history_page`).
    """
    channel = unique("device.")
    plain = raw(hub.origin, "plain")
    await plain.publish(channel=channel, message={"plain": True}).future()
    reader = raw(hub.origin, "reader", cipher_key="s3cret")

    envelope = await reader.fetch_messages(channels=[channel], decrypt_messages=True).future()
    assert envelope.is_error()
    assert isinstance(envelope.status.error_data.exception, TypeError)


async def test_defect_undecryptable_file_event_kills_loop(hub: Any, raw: Any) -> None:
    """A file event that cannot be decrypted ends the subscribe loop (str indexed as dict).

    Workaround: the emit guard of `ReflexSubscriptionManager` (b); the facade reports an
    `UndecryptableMessage(kind="file")` and keeps delivering
    (test_bus.py::test_cipher_key_files_round_trip_and_mismatch).

    HUB DISCREPANCY (blocks this test until reflex_hub is fixed): the encrypted file message
    ``GET /v1/files/publish-file/{pk}/{sk}/0/{ch}/0/"<base64>"`` gets
    ``400 [0,"Invalid File Message",...]`` from the hub; PubNub answers ``200 [1,"Sent",...]``.
    """
    channel = unique("config-")
    sender = raw(hub.origin, "sender", cipher_key="right")
    reader = raw(hub.origin, "reader", cipher_key="wrong")
    listener = RawListener()
    reader.add_listener(listener)
    reader.subscribe().channels([channel]).execute()
    await connected(listener)

    await sender.send_file().channel(channel).file_name("x.sh").file_object(b"echo").future()
    await listener.statuses.next(lambda c: c is PNStatusCategory.PNDecryptionErrorCategory)
    await sender.publish(channel=channel, message={"n": 1}).future()
    assert await listener.messages.absent()
    assert listener.events.items == []
