"""HTTP wiring: the route table, request dispatch, and starting/stopping a hub.

The hub runs on aiohttp's low-level server (no router: it routes on the raw
path, see :mod:`reflex_hub.paths`) with

* ``handler_cancellation=True``, so a client that drops a held long-poll
  cancels its handler and the hub notices at once;
* ``auto_decompress=False``, because the SDK labels zlib bodies as gzip and
  aiohttp would reject them before the handler sees them;
* a long request-line limit, so an oversized GET publish reaches the handler
  and gets PubNub's "Message Too Large" instead of aiohttp's plain-text 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any

import platformdirs
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from reflex_hub import files, history, objects, presence, publish, subscribe
from reflex_hub.core import Handler, HubConfig, HubCore
from reflex_hub.errors import HubError, bad_request, json_response, service_error
from reflex_hub.paths import PathError, RawTarget, match, parse_target
from reflex_hub.store import Store

log = logging.getLogger("reflex_hub")

#: Request line limit: a 32 KiB message percent-encoded is up to ~96 KiB.
MAX_REQUEST_LINE = 1024 * 1024
MAX_HEADER_FIELD = 64 * 1024
#: Stopping waits this long for in-flight requests (long-polls are answered first).
SHUTDOWN_TIMEOUT_SECONDS = 1.0
#: Route kind of the hub's own endpoints, which are not counted in the statistics.
INTERNAL = "internal"


async def _time(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    return json_response([core.clock.next()])


#: Longest a stats request may wait for its long-poll condition.
MAX_STATS_WAIT_SECONDS = 60.0


async def _stats(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    """Request counters for tools that run the hub in another process (benchmarks, tests).

    ``?min_long_polls=N&within=S`` first waits (at most S seconds) until N
    subscribe long-polls are held, so a harness can tell when its clients are
    connected without sleeping.
    """
    try:
        minimum = int(target.query.get("min_long_polls") or 0)
        within = min(float(target.query.get("within") or 0), MAX_STATS_WAIT_SECONDS)
    except ValueError:
        raise bad_request("min_long_polls and within must be numbers") from None
    if minimum > 0 and within > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await core.wait_for_polls(minimum)
    return json_response(
        {
            "requests": dict(core.stats),
            "total": sum(core.stats.values()),
            "long_polls": core.held_polls,
        }
    )


@dataclass(frozen=True)
class Route:
    kind: str  # statistics bucket
    methods: frozenset[str]
    pattern: tuple[str, ...]
    handler: Handler


def _route(kind: str, methods: str, path: str, handler: Handler) -> Route:
    return Route(kind, frozenset(methods.split("|")), tuple(path.strip("/").split("/")), handler)


_PRESENCE = "v2/presence/sub-key/{sub_key}"
_OBJECTS = "v2/objects/{sub_key}"
_FILES = "v1/files/{sub_key}/channels/{channel}"

ROUTES: tuple[Route, ...] = (
    _route("time", "GET", "time/{_}", _time),
    _route(INTERNAL, "GET", "_hub/stats", _stats),
    _route(
        "publish",
        "GET",
        "publish/{pub_key}/{sub_key}/{_}/{channel}/{_cb}/{*message}",
        publish.publish_get,
    ),
    _route(
        "publish", "POST", "publish/{pub_key}/{sub_key}/{_}/{channel}/{_cb}", publish.publish_post
    ),
    _route(
        "signal",
        "GET",
        "signal/{pub_key}/{sub_key}/{_}/{channel}/{_cb}/{*message}",
        publish.signal_get,
    ),
    _route("subscribe", "GET", "v2/subscribe/{sub_key}/{channels}/{_}", subscribe.subscribe),
    _route("heartbeat", "GET", _PRESENCE + "/channel/{channels}/heartbeat", presence.heartbeat),
    _route("leave", "GET", _PRESENCE + "/channel/{channels}/leave", presence.leave),
    _route("state", "GET", _PRESENCE + "/channel/{channels}/uuid/{uuid}/data", presence.set_state),
    _route("state", "GET", _PRESENCE + "/channel/{channels}/uuid/{uuid}", presence.get_state),
    _route("here_now", "GET", _PRESENCE + "/channel/{channels}", presence.here_now),
    _route("here_now", "GET", _PRESENCE, presence.here_now),
    _route("where_now", "GET", _PRESENCE + "/uuid/{uuid}", presence.where_now),
    _route("objects", "GET", _OBJECTS + "/uuids", objects.get_all_uuids),
    _route("objects", "GET", _OBJECTS + "/uuids/{uuid}", objects.get_uuid),
    _route("objects", "PATCH", _OBJECTS + "/uuids/{uuid}", objects.set_uuid),
    _route("objects", "DELETE", _OBJECTS + "/uuids/{uuid}", objects.remove_uuid),
    _route("objects", "GET", _OBJECTS + "/uuids/{uuid}/channels", objects.get_memberships),
    _route("objects", "PATCH", _OBJECTS + "/uuids/{uuid}/channels", objects.manage_memberships),
    _route("objects", "GET", _OBJECTS + "/channels", objects.get_all_channels),
    _route("objects", "GET", _OBJECTS + "/channels/{channel}", objects.get_channel),
    _route("objects", "PATCH", _OBJECTS + "/channels/{channel}", objects.set_channel),
    _route("objects", "DELETE", _OBJECTS + "/channels/{channel}", objects.remove_channel),
    _route("objects", "GET", _OBJECTS + "/channels/{channel}/uuids", objects.get_members),
    _route("objects", "PATCH", _OBJECTS + "/channels/{channel}/uuids", objects.manage_members),
    _route(
        "files",
        "GET",
        "v1/files/publish-file/{pub_key}/{sub_key}/{_}/{channel}/{_cb}/{*message}",
        publish.publish_file_message,
    ),
    _route("files", "POST", _FILES + "/generate-upload-url", files.generate_upload_url),
    _route("files", "GET", _FILES + "/files", files.list_files),
    _route("files", "GET", _FILES + "/files/{file_id}/{name}", files.download_redirect),
    _route("files", "DELETE", _FILES + "/files/{file_id}/{name}", files.delete_file),
    _route("files", "POST", files.UPLOAD_PATH, files.upload),
    _route(
        "files", "GET", files.DOWNLOAD_PREFIX + "/{sub_key}/{file_id}/{name}", files.serve_bytes
    ),
    _route(
        "history", "GET", "v3/history/sub-key/{sub_key}/channel/{channels}", history.fetch_messages
    ),
    _route(
        "history",
        "DELETE",
        "v3/history/sub-key/{sub_key}/channel/{channels}",
        history.delete_messages,
    ),
    _route(
        "history",
        "GET",
        "v3/history-with-actions/sub-key/{sub_key}/channel/{channels}",
        history.fetch_messages_with_actions,
    ),
    _route("history", "GET", "v2/history/sub-key/{sub_key}/channel/{channels}", history.history_v2),
)


def _routes_by_first_segment() -> dict[str, list[Route]]:
    table: dict[str, list[Route]] = {}
    for route in ROUTES:
        table.setdefault(route.pattern[0], []).append(route)
    return table


class Dispatcher:
    """Finds the route for a raw path and turns every failure into PubNub-shaped JSON."""

    def __init__(self, core: HubCore) -> None:
        self.core = core
        self._table = _routes_by_first_segment()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        core = self.core
        try:
            target = parse_target(request.raw_path)
        except PathError as exc:
            core.stats["malformed"] += 1
            return bad_request(str(exc)).response()
        wrong_method = False
        first = target.segments[0] if target.segments else ""
        for route in self._table.get(first, ()):
            args = match(route.pattern, target.segments)
            if args is None:
                continue
            if request.method not in route.methods:
                wrong_method = True
                continue
            if route.kind != INTERNAL:
                core.stats[route.kind] += 1
            try:
                return await route.handler(core, request, target, args)
            except HubError as exc:
                return exc.response()
            except Exception:
                # A bug, not a client error: still answer JSON so the SDK
                # reports it instead of crashing on an HTML body.
                log.exception("unhandled error in %s %s", request.method, request.path)
                return service_error(500, "Internal hub error", "reflex-hub").response()
        core.stats["unknown"] += 1
        if wrong_method:
            return service_error(
                405, f"Method {request.method} not allowed", "reflex-hub"
            ).response()
        return service_error(404, "Unknown endpoint", "reflex-hub").response()


class _JsonErrorRequestHandler(RequestHandler):
    """Answers requests aiohttp cannot parse (bad request line, oversized headers) with JSON.

    aiohttp builds those responses itself, as plain text or HTML, before any
    handler runs; a PubNub client would fail to decode them.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The base class logs the problem and refuses if a response already started.
        super().handle_error(request, status, exc, message)
        text = message.strip() if message and status != 500 else HTTPStatus(status).phrase
        response = service_error(status, text[:500], "reflex-hub").response()
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    # Server.__call__ hard-codes RequestHandler; this is the documented
    # low-level server with only the protocol class swapped.
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class HubStartError(RuntimeError):
    """The hub could not start (port in use, data dir locked, ...)."""


def default_data_dir() -> Path:
    """``<user data dir>/reflex/hub`` (platformdirs)."""
    return platformdirs.user_data_path("reflex", appauthor=False) / "hub"


def _lock_data_dir(data_dir: Path) -> IO[Any] | None:
    """Hold an exclusive lock on the data dir: two hubs sharing one would diverge."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; single use is the user's job
        return None
    handle = open(data_dir / "hub.lock", "a+")  # held open (and locked) for the hub's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise HubStartError(f"{data_dir} is in use by another reflex-hub") from None
    return handle


class HubHandle:
    """A running hub: where it listens, its request counters, and how to stop it."""

    def __init__(
        self,
        host: str,
        port: int,
        data_dir: Path | None,
        core: HubCore,
        runner: web.ServerRunner,
        lock: IO[Any] | None,
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.core = core
        self._runner = runner
        self._lock = lock
        self._stopped = False
        url_host = f"[{host}]" if ":" in host else host
        #: ``host:port``, what ``PNConfiguration.origin`` takes.
        self.origin = f"{url_host}:{port}"
        self.url = f"http://{self.origin}"

    @property
    def request_count(self) -> int:
        """HTTP requests received since start (or the last :meth:`reset_stats`)."""
        return sum(self.core.stats.values())

    @property
    def stats(self) -> dict[str, int]:
        """Requests received by endpoint kind: publish, subscribe, heartbeat, objects, ..."""
        return dict(self.core.stats)

    def reset_stats(self) -> None:
        self.core.stats.clear()

    async def stop(self) -> None:
        """Answer held long-polls, stop listening, write pending history, close the store."""
        if self._stopped:
            return
        self._stopped = True
        self.core.begin_shutdown()
        try:
            await self._runner.cleanup()
        finally:
            await self.core.close()
            if self._lock is not None:
                self._lock.close()

    def __repr__(self) -> str:
        return f"<HubHandle {self.url} data_dir={self.data_dir}>"


async def start_hub(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    data_dir: Path | None = None,
    memory: bool = False,
    pub_key: str | None = None,
    sub_key: str | None = None,
) -> HubHandle:
    """Start a hub in the running event loop and return once it accepts connections.

    ``port=0`` picks a free port (see ``handle.port``). State lives in
    SQLite under `data_dir` (default: the platformdirs user data dir
    ``reflex/hub``), or nowhere with ``memory=True``. With `pub_key` /
    `sub_key`, requests using other keys get PubNub's invalid-key errors;
    without them any keys are accepted.
    """
    if memory and data_dir is not None:
        raise ValueError("data_dir and memory=True are mutually exclusive")
    from reflex_hub.files import DiskBlobs, MemoryBlobs

    lock: IO[Any] | None = None
    if memory:
        resolved_dir: Path | None = None
        store = Store(None)
        blobs: files.BlobStore = MemoryBlobs()
    else:
        resolved_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        resolved_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock_data_dir(resolved_dir)
        try:
            store = Store(resolved_dir / "hub.sqlite3")
            blobs = DiskBlobs(resolved_dir / "files")
        except Exception:
            if lock is not None:
                lock.close()
            raise
    core = HubCore(HubConfig(pub_key=pub_key, sub_key=sub_key), store, blobs)
    server = _JsonErrorServer(
        Dispatcher(core),
        handler_cancellation=True,
        auto_decompress=False,
        max_line_size=MAX_REQUEST_LINE,
        max_field_size=MAX_HEADER_FIELD,
        access_log=None,
    )
    runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise HubStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound_port = int(runner.addresses[0][1])
        core.start()
    except BaseException:
        await runner.cleanup()
        store.close()
        if lock is not None:
            lock.close()
        raise
    log.info("reflex-hub listening on %s:%s (data: %s)", host, bound_port, resolved_dir or "memory")
    return HubHandle(host, bound_port, resolved_dir, core, runner, lock)


__all__ = ["HubHandle", "HubStartError", "ROUTES", "default_data_dir", "start_hub"]
