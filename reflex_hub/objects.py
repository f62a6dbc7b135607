"""App Context (Objects v2): uuid and channel metadata, channel members, uuid memberships.

Paths under ``/v2/objects/{sub}``::

    GET            /uuids                    all uuid metadata (paged)
    GET|PATCH|DEL  /uuids/{uuid}             one uuid's metadata
    GET|PATCH      /uuids/{uuid}/channels    memberships of a uuid
    GET            /channels                 all channel metadata (paged)
    GET|PATCH|DEL  /channels/{channel}       one channel's metadata
    GET|PATCH      /channels/{channel}/uuids members of a channel

List answers page with opaque ``next``/``prev`` cursors (sent back as
``start``/``end``), honour ``limit`` (max 100), ``sort``, ``include`` (which
optional fields and nested objects to render) and ``count``/``include=totalCount``
(adds ``totalCount``). PATCH on members/memberships takes ``{"set": [...],
"delete": [...]}`` and answers with the resulting list.

Every change is announced as an App Context event (subscribe envelope ``e=2``)
on the entity's channel: a uuid's events on the channel named after the uuid,
a channel's on the channel itself, and membership events on both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reflex_hub.errors import JSON_CONTENT_TYPE, HubError, dumps, json_response, objects_error
from reflex_hub.paths import RawTarget, required_segment
from reflex_hub.publish import read_body
from reflex_hub.pubsub import KIND_OBJECTS

if TYPE_CHECKING:
    from reflex_hub.core import HubCore

UUID = "uuid"
CHANNEL = "channel"

#: Fields every uuid / channel object carries, rendered whatever ``include`` says.
_BASE_FIELDS = {
    UUID: ("name", "externalId", "profileUrl", "email"),
    CHANNEL: ("name", "description"),
}
#: Fields rendered only when ``include`` names them.
_OPTIONAL_FIELDS = ("type", "status")
_NOT_FOUND = "Requested resource not found."
_MODIFIED = {
    UUID: "User to update has been modified after it was read.",
    CHANNEL: "Channel to update has been modified after it was read.",
}
DEFAULT_LIMIT = 100
MAX_LIMIT = 100


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(record: dict[str, Any]) -> dict[str, Any]:
    """Set ``updated`` and a fresh ``eTag`` (content plus time, so every write changes it)."""
    record["updated"] = _now_iso()
    content = dumps({key: value for key, value in record.items() if key != "eTag"})
    record["eTag"] = hashlib.md5(content.encode("utf-8"), usedforsecurity=False).hexdigest()
    return record


# -- request parsing --------------------------------------------------------------------


def _segment(args: dict[str, str], name: str) -> str:
    return required_segment(args, name, objects_error)


def _includes(target: RawTarget) -> set[str]:
    raw = target.query.get("include", "")
    return {item.strip() for item in raw.split(",") if item.strip()}


def _wants_count(target: RawTarget, includes: set[str]) -> bool:
    return target.query.get("count", "").lower() in ("1", "true") or "totalCount" in includes


def _invalid(message: str, location: str) -> HubError:
    return HubError(
        400,
        {
            "status": 400,
            "error": {
                "message": "Invalid request input.",
                "source": "objects",
                "details": [{"message": message, "location": location, "locationType": "body"}],
            },
        },
        JSON_CONTENT_TYPE,
    )


def _check_custom(custom: Any, location: str) -> None:
    """PubNub accepts only flat objects of scalars as ``custom``."""
    if custom is None:
        return
    if not isinstance(custom, dict):
        raise _invalid("custom must be a JSON object", location)
    for key, value in custom.items():
        if isinstance(value, dict | list):
            raise _invalid(f"custom.{key} must be a string, number or boolean", location)


def _check_string(value: Any, location: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{location} must be a string", location)


async def _json_body(request: web.BaseRequest) -> dict[str, Any]:
    try:
        body = await read_body(request)
        if body is None:
            raise objects_error(413, "Request body too large")
        value = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise objects_error(400, "Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise objects_error(400, "Request body must be a JSON object")
    return value


# -- rendering ----------------------------------------------------------------------------


def render_entity(
    kind: str, record: dict[str, Any], includes: set[str], prefix: str = ""
) -> dict[str, Any]:
    """Render a uuid/channel object; `prefix` is ``"uuid."``/``"channel."`` when nested."""
    rendered: dict[str, Any] = {"id": record["id"]}
    for name in _BASE_FIELDS[kind]:
        rendered[name] = record.get(name)
    for name in _OPTIONAL_FIELDS:
        if prefix + name in includes:
            rendered[name] = record.get(name)
    if prefix + "custom" in includes:
        rendered["custom"] = record.get("custom")
    rendered["updated"] = record["updated"]
    rendered["eTag"] = record["eTag"]
    return rendered


def _render_link(
    core: HubCore,
    sub_key: str,
    other_kind: str,
    other_id: str,
    link: dict[str, Any],
    includes: set[str],
) -> dict[str, Any]:
    """One member (other_kind=uuid) or membership (other_kind=channel) entry."""
    nested: dict[str, Any] = {"id": other_id}
    prefix = other_kind + "."
    if other_kind in includes or any(item.startswith(prefix) for item in includes):
        record = core.store.get_object(other_kind, sub_key, other_id)
        if record is not None:
            nested = render_entity(other_kind, record, includes, prefix)
    rendered: dict[str, Any] = {other_kind: nested}
    if "custom" in includes:
        rendered["custom"] = link.get("custom")
    for name in _OPTIONAL_FIELDS:
        if name in includes:
            rendered[name] = link.get(name)
    rendered["updated"] = link["updated"]
    rendered["eTag"] = link["eTag"]
    return rendered


# -- paging -------------------------------------------------------------------------------


def _encode_cursor(offset: int) -> str:
    # PubNub's cursors look like base64 of the offset ("MTA" = "10"); ours are exactly that.
    return base64.urlsafe_b64encode(str(offset).encode()).rstrip(b"=").decode()


def _decode_cursor(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = int(base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise objects_error(400, "Invalid page cursor") from None
    if offset < 0:
        raise objects_error(400, "Invalid page cursor")
    return offset


SortKeys = dict[str, Callable[[Any], Any]]


def _sort(items: list[Any], target: RawTarget, keys: SortKeys) -> list[Any]:
    raw = target.query.get("sort", "")
    specs = [spec.strip() for spec in raw.split(",") if spec.strip()]
    ordered = list(items)
    # Stable sorts applied last key first give a multi-key sort.
    for spec in reversed(specs):
        name, _, direction = spec.partition(":")
        getter = keys.get(name.strip())
        if getter is None:
            raise objects_error(400, f"Unsupported sort key {name.strip()!r}")
        descending = direction.strip().lower() == "desc"
        ordered.sort(
            key=lambda item, g=getter: (g(item) is not None, g(item) or ""), reverse=descending
        )
    return ordered


def _page(
    items: Sequence[Any],
    target: RawTarget,
    includes: set[str],
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """``{"status": 200, "data": [...], "totalCount"?, "next"?, "prev"?}`` for one page."""
    if target.query.get("filter"):
        raise objects_error(400, "filter expressions are not supported by reflex-hub")
    try:
        limit = int(target.query.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise objects_error(400, "Invalid limit") from None
    limit = min(max(limit, 1), MAX_LIMIT)
    offset = 0
    if target.query.get("start"):
        offset = _decode_cursor(target.query["start"])
    elif target.query.get("end"):
        offset = _decode_cursor(target.query["end"])
    page = items[offset : offset + limit]
    body: dict[str, Any] = {"status": 200, "data": [render(item) for item in page]}
    if _wants_count(target, includes):
        body["totalCount"] = len(items)
    if offset + limit < len(items):
        body["next"] = _encode_cursor(offset + limit)
    if offset > 0:
        body["prev"] = _encode_cursor(max(offset - limit, 0))
    return body


def _objects_response(body: Any) -> web.Response:
    return json_response(body, content_type=JSON_CONTENT_TYPE)


# -- events -----------------------------------------------------------------------------------


def _event(core: HubCore, sub_key: str, channel: str, event: str, kind: str, data: Any) -> None:
    payload = {"source": "objects", "version": "2.0", "event": event, "type": kind, "data": data}
    core.emit_event(sub_key, channel, payload, KIND_OBJECTS)


def _without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


# -- uuid / channel metadata ---------------------------------------------------------------------


def _entity_sort_keys() -> SortKeys:
    return {
        name: (lambda record, n=name: record.get(n))
        for name in ("id", "name", "updated", "type", "status")
    }


def _make_get_all(kind: str) -> Callable[..., Any]:
    async def get_all(
        core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
    ) -> web.Response:
        sub_key = args["sub_key"]
        core.check_sub_key(sub_key)
        includes = _includes(target)
        records = _sort(core.store.list_objects(kind, sub_key), target, _entity_sort_keys())
        return _objects_response(
            _page(records, target, includes, lambda record: render_entity(kind, record, includes))
        )

    return get_all


def _make_get_one(kind: str, arg: str) -> Callable[..., Any]:
    async def get_one(
        core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
    ) -> web.Response:
        sub_key = args["sub_key"]
        core.check_sub_key(sub_key)
        record = core.store.get_object(kind, sub_key, _segment(args, arg))
        if record is None:
            raise objects_error(404, _NOT_FOUND)
        return _objects_response(
            {"status": 200, "data": render_entity(kind, record, _includes(target))}
        )

    return get_one


def _make_set(kind: str, arg: str) -> Callable[..., Any]:
    async def set_one(
        core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
    ) -> web.Response:
        sub_key = args["sub_key"]
        core.check_sub_key(sub_key)
        object_id = _segment(args, arg)
        body = await _json_body(request)
        allowed = (*_BASE_FIELDS[kind], *_OPTIONAL_FIELDS, "custom")
        for name, value in body.items():
            if name not in allowed:
                raise _invalid(f"unknown field {name!r}", name)
            if name == "custom":
                _check_custom(value, name)
            else:
                _check_string(value, name)
        current = core.store.get_object(kind, sub_key, object_id)
        expected = request.headers.get("If-Match")
        if expected is not None and (current is None or current.get("eTag") != expected):
            raise objects_error(412, _MODIFIED[kind])
        record: dict[str, Any] = {"id": object_id}
        for name in allowed:
            record[name] = (current or {}).get(name)
        # PATCH semantics: fields present in the body replace the stored ones
        # (custom as a whole); absent fields keep their value.
        record.update(body)
        _stamp(record)
        core.store.put_object(kind, sub_key, object_id, record)
        _event(core, sub_key, object_id, "set", kind, _without_nulls(record))
        return _objects_response(
            {"status": 200, "data": render_entity(kind, record, _includes(target))}
        )

    return set_one


def _make_remove(kind: str, arg: str) -> Callable[..., Any]:
    async def remove_one(
        core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
    ) -> web.Response:
        sub_key = args["sub_key"]
        core.check_sub_key(sub_key)
        object_id = _segment(args, arg)
        if core.store.delete_object(kind, sub_key, object_id):
            _event(core, sub_key, object_id, "delete", kind, {"id": object_id})
        return _objects_response({"status": 200, "data": None})

    return remove_one


get_all_uuids = _make_get_all(UUID)
get_uuid = _make_get_one(UUID, "uuid")
set_uuid = _make_set(UUID, "uuid")
remove_uuid = _make_remove(UUID, "uuid")
get_all_channels = _make_get_all(CHANNEL)
get_channel = _make_get_one(CHANNEL, "channel")
set_channel = _make_set(CHANNEL, "channel")
remove_channel = _make_remove(CHANNEL, "channel")


# -- members and memberships ----------------------------------------------------------------------
#
# One stored row per (channel, uuid) link serves both views: "members of a
# channel" lists it by channel, "memberships of a uuid" by uuid.


def _link_sort_keys(core: HubCore, sub_key: str, other_kind: str) -> SortKeys:
    def nested(name: str) -> Callable[[Any], Any]:
        def get(item: tuple[str, dict[str, Any]]) -> Any:
            if name == "id":
                return item[0]
            record = core.store.get_object(other_kind, sub_key, item[0]) or {}
            return record.get(name)

        return get

    keys: SortKeys = {f"{other_kind}.{name}": nested(name) for name in ("id", "name", "updated")}
    for name in ("updated", "status", "type"):
        keys[name] = lambda item, n=name: item[1].get(n)
    return keys


def _parse_links(body: dict[str, Any], other_kind: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(entries to set, ids to delete) from a ``{"set": [...], "delete": [...]}`` body."""
    to_set = body.get("set") or []
    to_delete = body.get("delete") or []
    if not isinstance(to_set, list) or not isinstance(to_delete, list):
        raise _invalid("set and delete must be arrays", "set")
    entries: list[dict[str, Any]] = []
    for index, item in enumerate(to_set):
        location = f"set[{index}]"
        other_id = _linked_id(item, other_kind, location)
        _check_custom(item.get("custom"), location + ".custom")
        _check_string(item.get("status"), location + ".status")
        _check_string(item.get("type"), location + ".type")
        entries.append(
            {
                "id": other_id,
                "custom": item.get("custom"),
                "status": item.get("status"),
                "type": item.get("type"),
            }
        )
    removed = [
        _linked_id(item, other_kind, f"delete[{index}]") for index, item in enumerate(to_delete)
    ]
    return entries, removed


def _linked_id(item: Any, other_kind: str, location: str) -> str:
    if not isinstance(item, dict) or not isinstance(item.get(other_kind), dict):
        raise _invalid(f"{location}.{other_kind} must be an object with an id", location)
    other_id = item[other_kind].get("id")
    if not isinstance(other_id, str) or not other_id:
        raise _invalid(f"{location}.{other_kind}.id must be a non-empty string", location)
    return other_id


def _membership_event_data(channel: str, uuid: str, link: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"channel": {"id": channel}, "uuid": {"id": uuid}}
    if link is not None:
        data.update(_without_nulls(link))
    return data


def _apply_links(
    core: HubCore,
    sub_key: str,
    pairs_to_set: list[tuple[str, str, dict[str, Any]]],
    pairs_to_delete: list[tuple[str, str]],
) -> None:
    """Write (channel, uuid, link) changes in one transaction, then announce them."""
    announced: list[tuple[str, str, str, dict[str, Any] | None]] = []
    with core.store.transaction():
        for channel, uuid, entry in pairs_to_set:
            link = _stamp(
                {"custom": entry["custom"], "status": entry["status"], "type": entry["type"]}
            )
            core.store.put_membership(sub_key, channel, uuid, link)
            announced.append(("set", channel, uuid, link))
        for channel, uuid in pairs_to_delete:
            if core.store.delete_membership(sub_key, channel, uuid):
                announced.append(("delete", channel, uuid, None))
    for event, channel, uuid, link in announced:
        data = _membership_event_data(channel, uuid, link)
        _event(core, sub_key, channel, event, "membership", data)
        if uuid != channel:
            _event(core, sub_key, uuid, event, "membership", data)


def _links_response(
    core: HubCore,
    sub_key: str,
    target: RawTarget,
    other_kind: str,
    links: list[tuple[str, dict[str, Any]]],
) -> web.Response:
    includes = _includes(target)
    ordered = _sort(links, target, _link_sort_keys(core, sub_key, other_kind))
    return _objects_response(
        _page(
            ordered,
            target,
            includes,
            lambda item: _render_link(core, sub_key, other_kind, item[0], item[1], includes),
        )
    )


async def get_members(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    return _links_response(core, sub_key, target, UUID, core.store.members_of(sub_key, channel))


async def manage_members(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    channel = _segment(args, "channel")
    entries, removed = _parse_links(await _json_body(request), UUID)
    _apply_links(
        core,
        sub_key,
        [(channel, entry["id"], entry) for entry in entries],
        [(channel, uuid) for uuid in removed],
    )
    return _links_response(core, sub_key, target, UUID, core.store.members_of(sub_key, channel))


async def get_memberships(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    uuid = _segment(args, "uuid")
    return _links_response(core, sub_key, target, CHANNEL, core.store.memberships_of(sub_key, uuid))


async def manage_memberships(
    core: HubCore, request: web.BaseRequest, target: RawTarget, args: dict[str, str]
) -> web.Response:
    sub_key = args["sub_key"]
    core.check_sub_key(sub_key)
    uuid = _segment(args, "uuid")
    entries, removed = _parse_links(await _json_body(request), CHANNEL)
    _apply_links(
        core,
        sub_key,
        [(entry["id"], uuid, entry) for entry in entries],
        [(channel, uuid) for channel in removed],
    )
    return _links_response(core, sub_key, target, CHANNEL, core.store.memberships_of(sub_key, uuid))
