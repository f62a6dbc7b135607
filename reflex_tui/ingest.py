"""Bus events -> fleet state. Pure: no IO, no Textual, no PubNub (only reflex_core types).

The controller (`reflex_tui.controller`) feeds live events and backfilled records in;
everything that decides what an event *means* lives here, where tests can drive it with
hand-built events:

- results are attributed by the channel they arrived on (`device.<id>`), never by the ids
  and host names the payload claims; a message whose publisher is not `<id>` is recorded
  as a spoofing warning and not used as data;
- a malformed payload is a warning on that device, never an exception;
- history fetched after live results started is merged without duplicates: per device,
  live messages at or before the newest history entry are skipped, and history entries at
  or after the first live message are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reflex_core.events import (
    ChannelMember,
    ConnectionEvent,
    HistoryEntry,
    MembershipEvent,
    Message,
    PresenceAction,
    PresenceEvent,
    UndecryptableMessage,
    UuidMetadataEvent,
)
from reflex_core.protocol import (
    ProtocolError,
    ResultsMessage,
    StateMessage,
    decode_custom,
    device_id_from_channel,
    is_device_id,
    parse_device_message,
)
from reflex_tui.state import Fleet
from reflex_tui.text import one_line

TIMETOKEN_PER_SECOND = 10_000_000


def timetoken_seconds(timetoken: int) -> float:
    return timetoken / TIMETOKEN_PER_SECOND


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator should be told about once (a toast), not just see on a card."""

    text: str
    severity: str = "warning"


class Ingest:
    """Applies events to a `Fleet`. Methods return a `Notice` when one is worth a toast."""

    def __init__(self, fleet: Fleet, *, membership_channel: str, ignore_chan: str) -> None:
        self.fleet = fleet
        self.membership_channel = membership_channel
        self.ignore_chan = ignore_chan
        self._undecryptable_channels: set[str] = set()
        self.applied = 0
        """Device messages applied (results and state); for benchmarks and tests."""

    # ------------------------------------------------------------------ live events

    def message(self, event: Message) -> Notice | None:
        device_id = device_id_from_channel(event.channel)
        if device_id is None:
            return None  # not a device channel (membership/config channels carry no data)
        device = self.fleet.get(device_id)
        if device is not None and device.history_max_tt is not None:
            if event.timetoken <= device.history_max_tt:
                return None  # already applied from history
        return self._device_message(
            device_id,
            event.publisher,
            event.payload,
            received_at=self.fleet.clock(),
            timetoken=event.timetoken,
            live=True,
        )

    def _device_message(
        self,
        device_id: str,
        publisher: str | None,
        payload: object,
        *,
        received_at: float,
        timetoken: int,
        live: bool,
    ) -> Notice | None:
        fleet = self.fleet
        if publisher != device_id:
            if fleet.record_spoof(device_id, publisher):
                return Notice(
                    f"Ignored a message on device.{device_id} published by "
                    f"{one_line(publisher, max_chars=64)!r}, not by {device_id}",
                    "error",
                )
            return None
        try:
            parsed = parse_device_message(payload)
        except ProtocolError as exc:
            fleet.record_problem(
                device_id, f"malformed message on device.{device_id}: {one_line(exc, 200)}"
            )
            return None
        device = fleet.ensure(device_id)
        name_before = device.name
        if live and device.first_live_tt is None:
            device.first_live_tt = timetoken
        if isinstance(parsed, ResultsMessage):
            device.apply_results(parsed, received_at)
        elif isinstance(parsed, StateMessage):
            device.apply_state(parsed, received_at)
        self.applied += 1
        fleet.mark(device_id, structure=device.member and device.name != name_before)
        return None

    def presence(self, event: PresenceEvent) -> None:
        if event.channel != self.ignore_chan:
            return
        action = event.action
        if action == PresenceAction.JOIN and event.uuid:
            self.fleet.set_online(event.uuid, True)
        elif action in (PresenceAction.LEAVE, PresenceAction.TIMEOUT) and event.uuid:
            self.fleet.set_online(event.uuid, False)
        elif action == PresenceAction.INTERVAL:
            for uuid in event.joined:
                self.fleet.set_online(uuid, True)
            for uuid in (*event.left, *event.timed_out):
                self.fleet.set_online(uuid, False)

    def membership(self, event: MembershipEvent) -> str | None:
        """Returns the id of a device that just became a member (to load its details)."""
        if event.channel != self.membership_channel or not is_device_id(event.uuid):
            return None
        if event.action == "set":
            known = self.fleet.get(event.uuid)
            is_new = known is None or not known.member
            self.fleet.add_member(event.uuid)
            return event.uuid if is_new else None
        if event.action == "delete":
            self.fleet.remove_member(event.uuid)
        return None

    def uuid_metadata(self, event: UuidMetadataEvent) -> None:
        device = self.fleet.get(event.uuid)
        if device is None or event.action != "set":
            return
        if event.name:
            device.name = one_line(event.name, max_chars=255)
            device.touch()
        if event.custom is not None:
            device.metadata_custom = dict(event.custom)
            settings = decode_custom(event.custom)
            # Someone changed the settings (another dashboard): pending until `state` agrees.
            device.apply_settings(settings.ignore, settings.interval, pending=True)
        self.fleet.mark(event.uuid, structure=True)

    def connection(self, event: ConnectionEvent) -> None:
        self.fleet.set_connection(event.state, event.since, event.detail)

    def undecryptable(self, event: UndecryptableMessage) -> Notice | None:
        device_id = device_id_from_channel(event.channel)
        if device_id is not None:
            self.fleet.record_problem(device_id, event.describe())
        if event.channel in self._undecryptable_channels:
            return None
        self._undecryptable_channels.add(event.channel)
        if device_id is None:
            self.fleet.warn(None, event.describe())
        return Notice(event.describe(), "error")

    # ------------------------------------------------------------------ backfill

    def members(self, members: Iterable[ChannelMember]) -> list[str]:
        """Members from App Context (with their uuid metadata); returns their ids."""
        ids: list[str] = []
        for member in members:
            if not is_device_id(member.uuid):
                continue  # not an agent (a stray user id); never shown as a card
            settings = decode_custom(member.custom) if member.custom is not None else None
            self.fleet.add_member(
                member.uuid,
                name=one_line(member.name, max_chars=255) if member.name else None,
                custom=member.custom,
                settings=(settings.ignore, settings.interval) if settings else None,
            )
            ids.append(member.uuid)
        return ids

    def metadata(self, device_id: str, name: str | None, custom: dict[str, object] | None) -> None:
        """uuid metadata fetched for a device that joined while we ran."""
        device = self.fleet.get(device_id)
        if device is None:
            return
        if name:
            device.name = one_line(name, max_chars=255)
            device.touch()
        if custom is not None:
            device.metadata_custom = dict(custom)
            settings = decode_custom(custom)
            device.apply_settings(settings.ignore, settings.interval, pending=False)
        self.fleet.mark(device_id, structure=True)

    def here_now(self, uuids: Iterable[str]) -> None:
        self.fleet.set_present(uuids)

    def history(self, device_id: str, entries: Iterable[HistoryEntry]) -> int:
        """Stored messages of `device.<id>`, oldest first; returns how many were applied."""
        device = self.fleet.get(device_id)
        cutoff = device.first_live_tt if device is not None else None
        batch: list[tuple[ResultsMessage, float]] = []
        states: list[tuple[StateMessage, float]] = []
        newest_tt: int | None = None
        for entry in entries:
            if cutoff is not None and entry.timetoken >= cutoff:
                continue  # delivered live already
            if entry.is_file:
                continue
            if entry.error is not None:
                self.fleet.record_problem(device_id, f"device.{device_id}: {entry.error}")
                continue
            if entry.publisher != device_id:  # unknown publisher counts as not the device
                self.fleet.record_spoof(device_id, entry.publisher)
                continue
            try:
                parsed = parse_device_message(entry.payload)
            except ProtocolError as exc:
                self.fleet.record_problem(
                    device_id, f"malformed message on device.{device_id}: {one_line(exc, 200)}"
                )
                continue
            at = timetoken_seconds(entry.timetoken)
            if isinstance(parsed, ResultsMessage):
                batch.append((parsed, at))
            else:
                states.append((parsed, at))
            newest_tt = entry.timetoken if newest_tt is None else max(newest_tt, entry.timetoken)
        if not batch and not states:
            return 0
        device = self.fleet.ensure(device_id)
        name_before = device.name
        if batch:
            device.apply_results_batch(batch)
        for state, at in states:
            device.apply_state(state, at)
        if newest_tt is not None:
            device.history_max_tt = max(device.history_max_tt or 0, newest_tt)
        applied = len(batch) + len(states)
        self.applied += applied
        self.fleet.mark(device_id, structure=device.member and device.name != name_before)
        return applied
