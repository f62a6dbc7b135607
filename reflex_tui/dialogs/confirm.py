"""A yes/no question (delete host, re-send everything); `ModalScreen[bool]` like Posting's.

The safe answer has the focus, so a stray enter never deletes anything.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmDialog(ModalScreen[bool]):
    """Returns True when confirmed (button or `y`), False otherwise."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "cancel", id="dialog.cancel"),
        Binding("y", "confirm", "confirm", id="dialog.confirm"),
    ]

    def __init__(self, question: str, consequence: str = "", *, confirm_label: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.consequence = consequence
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(self.question), classes="title")
            if self.consequence:
                yield Static(Content(self.consequence), classes="consequence")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (n)", id="cancel")
                yield Button(f"{self.confirm_label} (y)", id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
