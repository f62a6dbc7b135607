"""Raw request-path parsing and routing.

aiohttp decodes ``%2F`` to ``/`` before routing, which would split a published
message such as ``{"path":"a/b"}`` (sent as ``%7B...a%2Fb...%7D``) into several
path segments, and it decodes a comma-joined channel list before we can split
it on the unencoded commas. So the hub routes on ``request.raw_path`` itself:
segments are split on the literal ``/`` first and percent-decoded afterwards,
channel lists are split on the literal ``,`` first and each name decoded after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus


class PathError(ValueError):
    """The path or query is not valid percent-encoded UTF-8."""


@dataclass(frozen=True)
class RawTarget:
    """The request target split into still-encoded path segments and a decoded query."""

    segments: tuple[str, ...]
    query: dict[str, str]


def unquote_segment(raw: str) -> str:
    """Percent-decode one path segment (``+`` stays a plus sign in paths)."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise PathError(f"invalid percent-encoding in {raw[:80]!r}") from exc


def required_segment(
    args: Mapping[str, str], name: str, error: Callable[[int, str], Exception]
) -> str:
    """The decoded, non-empty path argument `name`; a 400 built by `error` otherwise.

    `error` is the endpoint family's error builder (App Context and File Sharing answer
    with different `source` fields), so each family keeps PubNub's error envelope.
    """
    try:
        value = unquote_segment(args[name])
    except PathError as exc:
        raise error(400, str(exc)) from None
    if not value:
        raise error(400, f"Missing {name}")
    return value


def split_channels(raw: str) -> list[str]:
    """Split a comma-joined channel list, then decode each name.

    A lone ``,`` is what the SDK sends when it subscribes to groups only, so
    empty names are dropped rather than rejected.
    """
    return [unquote_segment(part) for part in raw.split(",") if part]


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a query string; the last occurrence of a repeated key wins.

    Old SDKs encode spaces in query values as ``+`` (the recorded
    ``meta=%7B%22a%22%3A+2...``); the current SDK encodes ``+`` as ``%2B``, so
    treating ``+`` as a space is right for both.
    """
    query: dict[str, str] = {}
    if not raw_query:
        return query
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        try:
            query[unquote_plus(key, errors="strict")] = unquote_plus(value, errors="strict")
        except UnicodeDecodeError as exc:
            raise PathError(f"invalid percent-encoding in query parameter {key[:40]!r}") from exc
    return query


def parse_target(raw_path: str) -> RawTarget:
    """Split ``/a/b%2Fc?x=1`` into ``("a", "b%2Fc")`` and ``{"x": "1"}``."""
    path, _, raw_query = raw_path.partition("?")
    # A fragment never reaches a server, but a hand-written request may carry one.
    path = path.partition("#")[0]
    segments = tuple(path.split("/")[1:]) if path.startswith("/") else tuple(path.split("/"))
    # A trailing slash ("/time/0/") leaves an empty last segment; ignore it.
    if segments and segments[-1] == "":
        segments = segments[:-1]
    return RawTarget(segments=segments, query=parse_query(raw_query))


def match(pattern: Sequence[str], segments: Sequence[str]) -> dict[str, str] | None:
    """Match raw segments against a route pattern.

    Pattern items are literals, ``{name}`` (one raw segment) or ``{*name}``
    (one or more trailing segments re-joined with ``/``, for message payloads
    from clients that did not encode ``/``). Captures stay percent-encoded.
    """
    captures: dict[str, str] = {}
    for index, item in enumerate(pattern):
        if item.startswith("{*"):
            rest = segments[index:]
            if not rest:
                return None
            captures[item[2:-1]] = "/".join(rest)
            return captures
        if index >= len(segments):
            return None
        segment = segments[index]
        if item.startswith("{"):
            if segment == "":
                return None
            captures[item[1:-1]] = segment
        elif segment != item:
            return None
    if len(segments) != len(pattern):
        return None
    return captures
