"""App-wide messages: how bus callbacks and workers report back to the UI thread of control.

`FleetChanged` can replace a queued instance of itself (toolong's pattern): a flood of
results becomes at most one pending message, and the app repaints on a timer from the
state's own change record, never once per result.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.worker import Worker


class FleetChanged(Message, bubble=False):
    """State changed; repaint soon (coalesced, at most ~10 times a second)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FleetChanged)


@dataclass
class ShowNotice(Message, bubble=False):
    """Tell the operator something once (a toast), from code that has no app handle."""

    text: str
    severity: str = "information"


@dataclass
class MemberJoined(Message, bubble=False):
    """A device registered while the dashboard runs: load its metadata and history."""

    device_id: str


class ForwardWorkerFailures:
    """Mixin for screens and dialogs: hand their workers' state changes to the app, whose
    single handler turns failures into notifications (Worker.StateChanged does not bubble).
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        app = getattr(self, "app", None)
        handler = getattr(app, "on_worker_state_changed", None)
        if handler is not None:
            handler(event)
