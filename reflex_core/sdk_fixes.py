"""Workarounds for defects of the PubNub Python SDK 10.8.0, in one place.

`reflex_core.bus` is the only user. Everything here touches SDK internals, so each workaround
says which SDK behaviour it works around and how to tell when it can go. The tests in
`tests/core/test_sdk_fixes.py` run the raw SDK against a local hub and assert that each defect is
*still there*; when one of them starts failing after an SDK upgrade, the matching workaround
below can be removed.

What lives here:

* `apply()`: the one process-wide patch (relays on `PNEventEmitter`), applied when
  `reflex_core.bus` is imported, idempotent.
* `ReflexSubscriptionManager`: the SDK's own event-engine subscription manager (passed to
  `PubNubAsyncio(subscription_manager=...)`, a supported constructor argument) plus per-instance
  hooks: engine transition observation, a guarded and de-duplicating message emitter, correct
  presence heartbeat channels, task tracking for a clean shutdown.
* `GuardedSendFile` / `GuardedDownloadFile`: file helpers that report the failing step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx
from pubnub.endpoints.endpoint import Endpoint
from pubnub.endpoints.file_operations.download_file_asyncio import DownloadFileAsyncio
from pubnub.endpoints.file_operations.fetch_upload_details import FetchFileUploadS3Data
from pubnub.endpoints.file_operations.get_file_url import GetFileDownloadUrl
from pubnub.endpoints.file_operations.publish_file_message import PublishFileMessage
from pubnub.endpoints.file_operations.send_file_asyncio import AsyncioSendFile
from pubnub.event_engine.models import events as ee_events
from pubnub.event_engine.models.invocations import EmitMessagesInvocation
from pubnub.event_engine.statemachine import StateMachine
from pubnub.models.subscription import (
    PNEventEmitter,
    PNSubscriptionType,
    PubNubSubscriptionSet,
)
from pubnub.pubnub_asyncio import EventEngineSubscriptionManager
from pubnub.request_handlers.async_httpx import AsyncHttpxRequestHandler, PubNubAsyncHTTPTransport

__all__ = [
    "EngineHooks",
    "GuardedDownloadFile",
    "GuardedSendFile",
    "Http11RequestHandler",
    "ReflexSubscriptionManager",
    "apply",
    "applied",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# 1. PNEventEmitter relays (process-wide)
# ---------------------------------------------------------------------------------------------
#
# Works around: `PNSubscriptionRegistryCallback` (pubnub/models/subscription.py), which the SDK
# registers as a listener as soon as anything subscribes -- `pubnub.subscribe()...execute()`
# goes through the same registry as `pubnub.channel(x).subscription()` -- relays App Context
# and file events by calling `.uuid()`, `.channel()`, `.membership()` and `.file_message()` on
# every `PubNubSubscription` / `PubNubSubscriptionSet`. `PNEventEmitter` only defines
# `message`, `signal`, `presence` and `message_action`, so the first membership, uuid/channel
# metadata or file event raises AttributeError inside the event engine's emit step. That
# aborts the dispatch of the next receive invocation: the subscribe loop silently stops, and
# the remaining messages of that batch are lost. Listeners added with `add_listener` see the
# event first and then nothing ever again.
#
# Remove when: `PNEventEmitter` has these four methods itself (then `apply()` already skips
# them), i.e. when `test_sdk_fixes.py::test_defect_app_context_event_kills_subscription`
# fails because the unpatched SDK keeps delivering.

_RELAYS: dict[str, str] = {
    # relay method the registry calls -> handler attribute a subscription object may carry
    "uuid": "on_user_metadata",
    "channel": "on_channel_metadata",
    "membership": "on_membership",
    "file_message": "on_file",
}
_APPLIED_MARK = "_reflex_sdk_fixes_relays"


def _event_names(event: Any) -> list[str]:
    """Channel/uuid names an event concerns, for matching it to a subscription's name.

    File events carry `.channel`; App Context events only carry the entity ids in `.data`.
    """
    channel = getattr(event, "channel", None)
    if isinstance(channel, str):
        return [channel]
    data = getattr(event, "data", None)
    names: list[str] = []
    if isinstance(data, dict):
        for key in ("channel", "uuid"):
            entity = data.get(key)
            if isinstance(entity, dict) and isinstance(entity.get("id"), str):
                names.append(entity["id"])
        if isinstance(data.get("id"), str):
            names.append(data["id"])
    return names


def _emitter_matches(emitter: Any, event: Any) -> bool:
    if isinstance(emitter, PubNubSubscriptionSet):
        return any(_emitter_matches(item, event) for item in emitter.get_subscription_items())
    name = getattr(emitter, "name", None)
    if (
        not isinstance(name, str)
        or getattr(emitter, "_type", None) is PNSubscriptionType.CHANNEL_GROUP
    ):
        return True  # a group's member channels are unknown here: deliver rather than drop
    for candidate in _event_names(event):
        if candidate == name or (name.endswith(".*") and candidate.startswith(name[:-1])):
            return True
    return False


def _make_relay(handler_name: str) -> Callable[[Any, Any], None]:
    def relay(self: Any, event: Any) -> None:
        handler = getattr(self, handler_name, None)
        if handler is not None and _emitter_matches(self, event):
            handler(event)

    relay.__doc__ = f"Relay to `{handler_name}` (added by reflex_core.sdk_fixes)."
    return relay


def apply() -> None:
    """Add the missing relays to `PNEventEmitter`. Idempotent; never replaces SDK methods."""
    if getattr(PNEventEmitter, _APPLIED_MARK, False):
        return
    for method, handler in _RELAYS.items():
        if not hasattr(PNEventEmitter, method):
            relay = _make_relay(handler)
            relay.__name__ = method
            setattr(PNEventEmitter, method, relay)
    setattr(PNEventEmitter, _APPLIED_MARK, True)


def applied() -> bool:
    """True when every relay the registry callback needs exists on `PNEventEmitter`."""
    return all(callable(getattr(PNEventEmitter, name, None)) for name in _RELAYS)


# ---------------------------------------------------------------------------------------------
# 2. Subscription manager with per-instance hooks
# ---------------------------------------------------------------------------------------------

# Engine state names (the SDK's class names) the hooks reason about.
RECONNECTING_STATES = frozenset({"HandshakeReconnectingState", "ReceiveReconnectingState"})
FAILED_STATES = frozenset({"HandshakeFailedState", "ReceiveFailedState"})
SUCCESS_EVENTS = frozenset(
    {
        "HandshakeSuccessEvent",
        "HandshakeReconnectSuccessEvent",
        "ReceiveSuccessEvent",
        "ReceiveReconnectSuccessEvent",
    }
)


class EngineHooks(Protocol):
    """What the facade plugs into a `ReflexSubscriptionManager`."""

    def before_event(self, engine: str, event: str, state: str, handled: bool) -> None: ...

    def after_event(self, engine: str, event: Any, before: str, after: str) -> None: ...

    def accept_envelope(self, raw: dict[str, Any]) -> bool: ...

    def envelope_failed(self, raw: dict[str, Any], exc: BaseException) -> None: ...


class _DetachedEngine:
    """Stands in for the presence engine while the SDK's adapt_* methods run."""

    def trigger(self, event: Any) -> None:
        return None


_DETACHED = _DetachedEngine()


class ReflexSubscriptionManager(EventEngineSubscriptionManager):
    """The SDK's event-engine subscription manager with the workarounds below, per instance.

    a) Presence heartbeat channels. Works around: the SDK's presence engine only takes channel
       lists from the *first* `HeartbeatJoinedEvent` (`HeartbeatingState.joined` and
       `HeartbeatCooldownState.joined` ignore `event.channels`), so channels subscribed later are
       never heartbeated; `left()` does `list.remove()` and raises ValueError for channels it
       never had, which surfaces from `unsubscribe()`; wildcard subscriptions (``device.*``) are
       heartbeated as if they were channel names. Here the SDK's adapt_* methods run with the
       presence engine detached, and `set_heartbeat_channels()` restarts the engine with the
       complete list whenever it changes. Remove when
       `test_defect_heartbeat_ignores_later_channels` fails (later channels are heartbeated,
       leaving unknown channels no longer raises) and the SDK filters wildcards itself.

    b) Emit guard + de-duplication. Works around: (1) any exception while the event engine
       emits a batch of messages -- a listener that raises, or the SDK's own file-event parsing
       of a payload it could not decrypt (`extracted_message["file"]` on a str) -- escapes
       `StateMachine.trigger` before the next receive invocation is dispatched, which ends the
       subscribe loop for good; (2) after an outage `ReceiveReconnectEffect` reports success
       with the *old* cursor (`timetoken = invocation.timetoken`), so the next receive asks for
       the same window again and every catch-up message is emitted twice. Here each envelope
       is emitted on its own inside try/except, and envelopes whose (channel, timetoken) was
       already emitted are dropped. Remove (1) when both
       `test_defect_listener_exception_kills_loop` and
       `test_defect_undecryptable_file_event_kills_loop` fail; remove the de-duplication
       when `test_defect_catch_up_delivered_twice` fails.

    c) Transition observation: the engine reports neither reconnection (ReceiveReconnect
       success emits no status) nor the start of an outage (the first failure emits nothing),
       so the facade watches state transitions to derive connection events.

    d) Shutdown. Works around: `PubNubAsyncio.stop()` only disables the engines; running effect
       tasks (long-poll, reconnect sleeps, heartbeat waits) stay pending and are reported as
       destroyed when the loop closes; `EventEngineSubscriptionManager.__init__` also creates
       an event loop it never uses or closes (ResourceWarning). Effect tasks are tracked and
       cancelled by `shutdown()`; the stray loop is closed at once. Remove when `stop()` awaits
       its effects (check `test_close_leaves_no_sdk_tasks` with `shutdown()` disabled).
    """

    # Swapped for `_DETACHED` while the SDK's adapt_* methods run, hence Any.
    presence_engine: Any

    def __init__(self, pubnub_instance: Any) -> None:
        super().__init__(pubnub_instance)
        # (d) The SDK never uses this loop; closing it now avoids the ResourceWarning.
        self.loop.close()
        self.hooks: EngineHooks | None = None
        self.effect_tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._heartbeat_channels: tuple[str, ...] = ()
        for name, engine in (("subscribe", self.event_engine), ("presence", self.presence_engine)):
            self._observe(name, engine)
            self._track_effects(engine)
        self._guard_emitter()

    # -- (a) presence heartbeat channels ------------------------------------------------------

    def adapt_subscribe_builder(self, subscribe_operation: Any) -> None:
        engine, self.presence_engine = self.presence_engine, _DETACHED
        try:
            super().adapt_subscribe_builder(subscribe_operation)
        finally:
            self.presence_engine = engine

    def adapt_unsubscribe_builder(self, unsubscribe_operation: Any) -> None:
        engine, self.presence_engine = self.presence_engine, _DETACHED
        try:
            super().adapt_unsubscribe_builder(unsubscribe_operation)
        finally:
            self.presence_engine = engine

    def set_heartbeat_channels(self, channels: Sequence[str]) -> None:
        """Heartbeat exactly `channels` (and restart the heartbeat cycle) if they changed."""
        wanted = tuple(sorted(set(channels)))
        config = self._pubnub.config
        if not (config.enable_presence_heartbeat and config.heartbeat_interval > 0):
            return
        if wanted == self._heartbeat_channels or self._closed:
            return
        self._heartbeat_channels = wanted
        if self.presence_engine.get_state_name() != "HeartbeatInactiveState":
            # Leave is sent by the facade itself (awaited), never by the engine.
            self.presence_engine.trigger(ee_events.HeartbeatLeftAllEvent(suppress_leave=True))
        if wanted:
            self.presence_engine.trigger(
                ee_events.HeartbeatJoinedEvent(channels=list(wanted), groups=[])
            )

    @property
    def heartbeat_channels(self) -> tuple[str, ...]:
        return self._heartbeat_channels

    # -- (b) guarded, de-duplicating emitter ---------------------------------------------------

    def _guard_emitter(self) -> None:
        emitter = self.event_engine.get_dispatcher()._effect_emitter
        emit_one = emitter.emit_message

        def emit_message(invocation: Any) -> None:
            for raw in list(invocation.messages or ()):
                hooks = self.hooks
                try:
                    if hooks is not None and not hooks.accept_envelope(raw):
                        continue
                    emit_one(EmitMessagesInvocation([raw]))
                except Exception as exc:  # one bad envelope must not end the subscription
                    if hooks is not None:
                        try:
                            hooks.envelope_failed(raw, exc)
                        except Exception:
                            logger.exception("envelope failure hook raised")
                    else:
                        logger.error("dropped a subscribe envelope: %r", exc)

        emitter.emit_message = emit_message

    # -- (c) transition observation -----------------------------------------------------------

    def _observe(self, name: str, engine: StateMachine) -> None:
        trigger = engine.trigger

        def observed_trigger(event: Any) -> Any:
            if self._closed:
                # Late events from effects finishing during shutdown: the SDK would log an
                # error ("EventEngine is not enabled") for each; there is nothing to do.
                return False
            hooks = self.hooks
            before = engine.get_state_name()
            if hooks is not None:
                handled = event.get_name() in engine._current_state._transitions
                _call_hook(hooks.before_event, name, event.get_name(), before, handled)
            try:
                return trigger(event)
            finally:
                if hooks is not None:
                    _call_hook(hooks.after_event, name, event, before, engine.get_state_name())

        engine.trigger = observed_trigger  # type: ignore[method-assign]

    # -- (d) shutdown ---------------------------------------------------------------------------

    def _track_effects(self, engine: StateMachine) -> None:
        dispatcher = engine.get_dispatcher()
        dispatch = dispatcher.dispatch_managed_effect
        tasks = self.effect_tasks

        def tracked_dispatch(invocation: Any) -> None:
            dispatch(invocation)
            effect = dispatcher._managed_effects.get(type(invocation).__name__)
            task = getattr(effect, "task", None)
            if isinstance(task, asyncio.Task) and not task.done():
                tasks.add(task)
                task.add_done_callback(_effect_done(tasks))

        dispatcher.dispatch_managed_effect = tracked_dispatch  # type: ignore[method-assign]

    def stop_effects(self) -> list[asyncio.Task[Any]]:
        """Disable both engines and stop their effects; returns the tasks still to await."""
        self._closed = True
        self.event_engine.stop()
        self.presence_engine.stop()
        for engine in (self.event_engine, self.presence_engine):
            for effect in list(engine.get_dispatcher()._managed_effects.values()):
                try:
                    effect.stop()
                except Exception:  # an effect that never started has half its attributes
                    logger.debug("stopping %s failed", type(effect).__name__, exc_info=True)
        pending = [task for task in self.effect_tasks if not task.done()]
        for task in pending:
            task.cancel()
        return pending

    async def shutdown(self, grace: float = 2.0) -> None:
        pending = self.stop_effects()
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                logger.warning("SDK task %s did not stop within %.1fs", task.get_name(), grace)


def _effect_done(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieving the exception here also avoids "Task exception was never retrieved".
            logger.error("PubNub SDK task %s failed: %r", task.get_name(), task.exception())

    return done


def _call_hook(hook: Callable[..., None], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("engine hook %s raised", getattr(hook, "__name__", hook))


# ---------------------------------------------------------------------------------------------
# 3. File helpers that report the failing step
# ---------------------------------------------------------------------------------------------
#
# Works around: `AsyncioSendFile.future()` and `DownloadFileAsyncio.future()` chain two or three
# requests and never check the envelopes in between. When a step fails (file too large, 404,
# hub down) the next step dereferences `None.result` and the caller gets a bare AttributeError
# -- or the same AttributeError raised again from inside `request_future`'s own error handler --
# instead of the HTTP status and PubNub's message. These subclasses check each envelope and
# raise it (a `PubNubAsyncioException` carrying the status). Remove when the SDK versions check
# their intermediate envelopes (`test_defect_download_error_is_attribute_error` fails).


def _raise_if_error(envelope: Any) -> Any:
    if envelope is None:
        raise RuntimeError("request was cancelled")
    if envelope.is_error():
        raise envelope
    return envelope


class GuardedSendFile(AsyncioSendFile):
    async def future(self) -> Any:
        self._file_upload_envelope = _raise_if_error(
            await FetchFileUploadS3Data(self._pubnub)
            .channel(self._channel)
            .file_name(self._file_name)
            .future()
        )
        uploaded = _raise_if_error(await Endpoint.future(self))
        published = _raise_if_error(
            await PublishFileMessage(self._pubnub)
            .channel(self._channel)
            .meta(self._meta)
            .message(self._message)
            .file_id(uploaded.result.file_id)
            .file_name(uploaded.result.name)
            .should_store(self._should_store)
            .ttl(self._ttl)
            .future()
        )
        uploaded.result.timestamp = published.result.timestamp
        return uploaded


class GuardedDownloadFile(DownloadFileAsyncio):
    async def future(self) -> Any:
        self._download_data = _raise_if_error(
            await GetFileDownloadUrl(self._pubnub)
            .channel(self._channel)
            .file_name(self._file_name)
            .file_id(self._file_id)
            .future()
        )
        return _raise_if_error(await Endpoint.future(self))


class Http11RequestHandler(AsyncHttpxRequestHandler):
    """The SDK's httpx handler over HTTP/1.1, with TLS only when the origin uses it.

    The SDK always builds its transport with ``verify=True, http2=True``: it loads the
    CA bundle into an SSL context and sets up HTTP/2 even for ``ssl = False`` (a local
    hub on loopback, which speaks HTTP/1.1), and its ``__init__`` builds that transport
    before a subclass could replace it. HTTP/2 buys nothing for a client that makes one
    publish every few seconds and holds one long poll: PubNub serves HTTP/1.1 as well,
    and the SDK's synchronous handler uses nothing else. Together with `lean_imports`
    keeping ``h2`` out of the process, this is about 2 MiB of an agent's resident memory.
    Passed through the supported ``custom_request_handler`` argument.

    Remove when: the SDK lets the caller choose ``http2``/``verify`` for its transport.
    """

    def __init__(self, pubnub: Any) -> None:  # noqa: D107 -- deliberately no super().__init__
        self.pubnub = pubnub
        self._connector = PubNubAsyncHTTPTransport(verify=bool(pubnub.config.ssl), http2=False)

    async def create_session(self) -> None:
        self._session = httpx.AsyncClient(
            timeout=httpx.Timeout(self.pubnub.config.connect_timeout),
            transport=self._connector,
        )
