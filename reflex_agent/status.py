"""`reflex-agent status`: what the network knows of this device, and what is on disk.

Read-only: it never subscribes (so it neither joins presence nor disturbs a running agent)
and writes nothing. Network answers and local facts are gathered separately, so a host that
cannot reach the network still gets the local half and a clear line saying why the rest is
missing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from reflex_agent.daemon import resolve_settings
from reflex_agent.registry import Catalog, build_catalog
from reflex_agent.state_store import LocalState, StateStore
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.errors import BusError
from reflex_core.events import UuidMetadata
from reflex_core.protocol import DeviceSettings, decode_custom

__all__ = ["DeviceStatus", "collect_status", "render_status"]

#: The whole status query must finish in about this long, even with the network down.
STATUS_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    name: str
    id: str
    endpoint: str
    channel: str
    presence_channel: str
    member: bool | None  # None: unknown (network error)
    metadata: UuidMetadata | None
    online: bool | None
    network_error: str | None
    state_path: Path
    local: LocalState
    scripts_dir: Path
    catalog: Catalog
    remote: DeviceSettings


async def collect_status(config: Config) -> DeviceStatus:
    ident = config.device_id
    bus = Bus(BusSettings.from_config(config, user_id=ident, request_timeout=5, connect_timeout=3))
    member: bool | None = None
    metadata: UuidMetadata | None = None
    online: bool | None = None
    error: str | None = None
    await bus.start()
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            metadata = await bus.get_uuid_metadata(ident)
            members = await bus.get_channel_members(config.channel)
            member = any(m.uuid == ident for m in members)
            online = ident in await bus.here_now(config.ignore_chan)
    except BusError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"no answer within {STATUS_TIMEOUT:g} s"
    finally:
        await bus.close()
    store = StateStore(config.state_dir / f"{ident}.json")
    return DeviceStatus(
        name=config.device_name,
        id=ident,
        endpoint=config.hub_url or "PubNub",
        channel=config.channel,
        presence_channel=config.ignore_chan,
        member=member,
        metadata=metadata,
        online=online,
        network_error=error,
        state_path=store.path,
        local=store.load(),
        scripts_dir=config.scripts,
        catalog=build_catalog(Path(config.scripts)),
        remote=decode_custom(metadata.custom) if metadata is not None else DeviceSettings(),
    )


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def render_status(status: DeviceStatus, config: Config) -> str:
    """Plain text, one fact per line, for people and for grep."""
    settings, ignore_from, interval_from = resolve_settings(status.remote, status.local, config)
    lines = [f"device      {status.name} (id {status.id})", f"network     {status.endpoint}"]
    if status.network_error:
        lines.append(f"            unreachable: {status.network_error}")
    member = _yes_no(status.member)
    lines.append(f"member      {member} (of {status.channel})")
    online = _yes_no(status.online)
    lines.append(f"online      {online} (presence on {status.presence_channel})")
    if status.metadata is not None:
        lines.append(f"name        {status.metadata.name or '(not set)'} (App Context)")
    elif status.network_error is None:
        lines.append("name        (no App Context metadata: never joined)")
    lines.append(f"ignore      {', '.join(settings.ignore) or '(nothing)'} (from {ignore_from})")
    lines.append(f"interval    {settings.interval} s (from {interval_from})")
    state = status.local
    if state.ignored is None and state.interval is None:
        lines.append(f"state file  {status.state_path} (none yet)")
    else:
        lines.append(f"state file  {status.state_path}")
    lines.append(f"scripts     {status.scripts_dir}")
    checks = status.catalog.checks
    if not checks:
        lines.append("            (no scripts)")
    width = max((len(test) for test in checks), default=0)
    file_width = max((len(check.file) for check in checks.values()), default=0)
    for test, check in checks.items():
        ignored = "  (ignored)" if settings.ignores(test) else ""
        lines.append(
            f"  {test:<{width}}  {check.file:<{file_width}}  [{check.origin.value}]{ignored}"
        )
    for local, received in status.catalog.shadowed:
        lines.append(f"  note: {local.name} is replaced by received/{received.name}")
    for conflict in status.catalog.conflicts:
        lines.append(f"  note: {conflict.skipped.name} not run ({conflict.kept.name} wins)")
    for bad in status.catalog.bad_names:
        lines.append(f"  refused: {bad.file!r}: {bad.reason}")
    return "\n".join(lines)
