"""`?`: every key, generated from the same specs as the bindings and the command palette."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from reflex_tui.commands import help_sections

KEY_WIDTH = 14


def help_content() -> Content:
    parts: list[str | tuple[str, str]] = []
    for title, specs in help_sections():
        parts.append((f"{title}\n", "bold $accent"))
        for spec in specs:
            parts.append((f"  {spec.display_keys:<{KEY_WIDTH}}", "bold"))
            parts.append(f"{spec.help}\n")
        parts.append("\n")
    parts.append(("  ctrl+p".ljust(KEY_WIDTH + 2), "bold"))
    parts.append("Command palette: every action above by name\n")
    parts.append(("\nStatus words: OK, WARN, CRIT, UNKN. ", "$text-muted"))
    parts.append(("⧗ = sent, waiting for the agent to confirm.", "$text-muted"))
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Reflex Observer — keys", classes="title")
            with VerticalScroll(id="help-body"):
                yield Static(help_content())

    def action_close(self) -> None:
        self.dismiss(None)
