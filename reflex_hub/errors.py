"""PubNub-shaped error bodies and the JSON response helpers every handler uses.

The SDK calls ``json.loads`` on every response body before it looks at the
status code, so an HTML or plain-text error (aiohttp's defaults) surfaces as a
JSON decoding crash instead of a readable error. Every error the hub produces
goes through :class:`HubError`, which always renders as JSON in the shape the
real service uses for that API family.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

#: Content type PubNub's classic endpoints (publish, subscribe, presence, history) send.
JS_CONTENT_TYPE = 'text/javascript; charset="UTF-8"'
#: Content type of App Context and File Sharing responses.
JSON_CONTENT_TYPE = "application/json"

_BASE_HEADERS = {
    # Browsers (and the PubNub JS SDK) need CORS; the real service sends it too.
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-cache",
}


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is (PubNub does not escape non-ASCII)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def text_response(
    text: str, status: int = 200, content_type: str = JS_CONTENT_TYPE
) -> web.Response:
    """A response from an already serialized JSON document."""
    headers = dict(_BASE_HEADERS)
    headers["Content-Type"] = content_type
    return web.Response(body=text.encode("utf-8"), status=status, headers=headers)


def json_response(
    value: Any, status: int = 200, content_type: str = JS_CONTENT_TYPE
) -> web.Response:
    """Serialize `value` and wrap it in a response with PubNub's headers."""
    return text_response(dumps(value), status=status, content_type=content_type)


class HubError(Exception):
    """An error that renders as a PubNub-shaped JSON response."""

    def __init__(self, status: int, body: Any, content_type: str = JS_CONTENT_TYPE) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status = status
        self.body = body
        self.content_type = content_type

    def response(self) -> web.Response:
        return json_response(self.body, status=self.status, content_type=self.content_type)


def publish_error(status: int, message: str, timetoken: int) -> HubError:
    """Publish/signal family errors: ``[0, "Message Too Large", "<tt>"]``."""
    return HubError(status, [0, message, str(timetoken)])


def service_error(status: int, message: str, service: str) -> HubError:
    """Flat error object used by Presence, Access Manager and the hub itself."""
    return HubError(
        status, {"status": status, "message": message, "error": True, "service": service}
    )


def invalid_subscribe_key() -> HubError:
    """What PubNub's edge answers for an unknown subscribe key on any API."""
    return HubError(
        400,
        {
            "message": "Invalid Subscribe Key",
            "error": True,
            "service": "Access Manager",
            "status": 400,
        },
    )


def presence_error(status: int, message: str) -> HubError:
    return service_error(status, message, "Presence")


def bad_request(message: str) -> HubError:
    """A malformed request on an endpoint without a more specific error family."""
    return service_error(400, message, "reflex-hub")


def objects_error(status: int, message: str) -> HubError:
    """App Context errors: ``{"status": 412, "error": {"message", "source": "objects"}}``."""
    return HubError(
        status,
        {"status": status, "error": {"message": message, "source": "objects"}},
        JSON_CONTENT_TYPE,
    )


def files_error(status: int, message: str) -> HubError:
    """File Sharing errors, same envelope as App Context with ``source: files``."""
    return HubError(
        status,
        {"status": status, "error": {"message": message, "source": "files"}},
        JSON_CONTENT_TYPE,
    )


def history_error(status: int, message: str) -> HubError:
    """Message Persistence (v3) errors."""
    return HubError(
        status, {"status": status, "error": True, "error_message": message, "channels": {}}
    )
