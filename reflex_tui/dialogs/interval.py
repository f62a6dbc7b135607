"""`t` / `T`: ask for an interval in seconds, validated 1..86400 before anything is sent."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from reflex_core.protocol import MAX_INTERVAL, MIN_INTERVAL
from reflex_tui.text import one_line


def parse_interval(text: str) -> tuple[int | None, str | None]:
    """(seconds, None) for a valid interval, else (None, why not)."""
    value = text.strip()
    expected = f"Enter a whole number of seconds from {MIN_INTERVAL} to {MAX_INTERVAL}"
    if not value:
        return None, expected
    if not value.isdigit() or len(value) > 9:
        return None, f"{expected} (got {one_line(value, 20)!r})"
    number = int(value)
    if not MIN_INTERVAL <= number <= MAX_INTERVAL:
        return None, f"{expected} (got {number})"
    return number, None


class IntervalDialog(ModalScreen[int | None]):
    """Returns the chosen interval, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="dialog.cancel"),
    ]

    def __init__(self, label: str, current: int | None) -> None:
        super().__init__()
        self.label = label
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(f"Interval for {one_line(self.label, 60)}"), classes="title")
            yield Input(
                value="" if self.current is None else str(self.current),
                placeholder=f"seconds ({MIN_INTERVAL}..{MAX_INTERVAL})",
                type="integer",
                id="interval",
            )
            yield Static(
                f"Seconds between rounds, {MIN_INTERVAL} to {MAX_INTERVAL}. "
                "Sent now and stored for agents that are offline.",
                classes="hint",
            )
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Set", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        _, error = parse_interval(event.value)
        self.query_one("#error", Static).update("" if error is None else Content(error))

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        value, error = parse_interval(self.query_one(Input).value)
        if error is not None:
            self.query_one("#error", Static).update(Content(error))
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
