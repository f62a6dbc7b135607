"""What a command on `ignore_chan` does to the agent: a pure function, no I/O.

The daemon receives arbitrary JSON from anyone holding the publish key. Keeping
the decision ("is this for me, is it well formed, what changes, what must happen
next") pure means every command shape -- v1, the seed's legacy forms, garbage --
is covered by table tests without a network, and the daemon's handler shrinks to
"carry out the effects", which cannot be confused by input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reflex_core.protocol import (
    Command,
    ProtocolError,
    Refresh,
    RunNow,
    SetIgnore,
    SetInterval,
    parse_command,
)

__all__ = [
    "AgentSettings",
    "Applied",
    "Decision",
    "Effects",
    "Malformed",
    "NotForUs",
    "apply_command",
    "decide",
]


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the operator can change remotely: ignored tests and the round interval."""

    ignore: tuple[str, ...] = ()
    interval: int = 10

    def ignores(self, test: str) -> bool:
        """Test names are lowercase already; ignore matching is case-insensitive."""
        return test.lower() in self.ignore


@dataclass(frozen=True, slots=True)
class Effects:
    """What the daemon must do after a command, in this order.

    `persist`: write the settings to App Context `custom` and the local state file.
    `reschedule`: the interval changed; re-base the round schedule now.
    `publish_state`: send a `state` message (it also acknowledges the command to
    the dashboard, which shows a change as pending until `state` confirms it).
    `run_all`: run every non-ignored test now; `run_tests`: run these tests now.
    """

    persist: bool = False
    reschedule: bool = False
    publish_state: bool = False
    run_all: bool = False
    run_tests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Applied:
    """A command for this device: the new settings and what to do about them."""

    command: Command
    settings: AgentSettings
    effects: Effects
    summary: str  # one log line


@dataclass(frozen=True, slots=True)
class NotForUs:
    """A well-formed command addressed to another device: ignored silently."""

    command: Command


@dataclass(frozen=True, slots=True)
class Malformed:
    """Input that is not a command: logged as one warning line, nothing else."""

    reason: str


Decision = Applied | NotForUs | Malformed


def apply_command(settings: AgentSettings, command: Command) -> Applied:
    """The effect of a command already known to be addressed to this device.

    `set_ignore` and `set_interval` always persist and publish `state`, even when
    nothing changed: the dashboard wrote the same value and waits for `state` to
    confirm it, and re-writing App Context heals a `custom` someone else damaged.
    """
    if isinstance(command, SetIgnore):
        new = replace(settings, ignore=command.ignore)
        shown = ", ".join(command.ignore) or "(nothing)"
        return Applied(
            command, new, Effects(persist=True, publish_state=True), f"set_ignore: {shown}"
        )
    if isinstance(command, SetInterval):
        new = replace(settings, interval=command.interval)
        return Applied(
            command,
            new,
            Effects(persist=True, reschedule=True, publish_state=True),
            f"set_interval: {settings.interval} s -> {command.interval} s",
        )
    if isinstance(command, Refresh):
        return Applied(command, settings, Effects(publish_state=True, run_all=True), "refresh")
    if isinstance(command, RunNow):
        if command.test is None:
            return Applied(command, settings, Effects(run_all=True), "run_now: every test")
        return Applied(
            command,
            settings,
            Effects(run_tests=(command.test,)),
            f"run_now: {command.test}",
        )
    raise TypeError(f"not a command: {command!r}")  # pragma: no cover - Command is closed


def decide(payload: object, device_id: str, settings: AgentSettings) -> Decision:
    """Parse a message from `ignore_chan` and decide what it means for `device_id`.

    Never raises, whatever `payload` is: hostile input costs one log line.
    """
    try:
        command = parse_command(payload)
    except ProtocolError as exc:
        return Malformed(str(exc) or "malformed command")
    except Exception as exc:  # noqa: BLE001 - belt and braces: input must never kill the agent
        return Malformed(f"unreadable command ({type(exc).__name__})")
    if not command.applies_to(device_id):
        return NotForUs(command)
    return apply_command(settings, command)
