"""Every dashboard action, declared once: key bindings, footer, help screen and palette.

The footer, the `?` help screen and the command palette (ctrl+p) are all generated from
`DASHBOARD_ACTIONS` / `APP_ACTIONS`, so a key can never be documented in one place and
missing from another. Each binding has an `id` (`dashboard.refresh`, ...) so a keymap can
remap it (`App.set_keymap`), as in Posting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from textual.screen import Screen

_IGNORE = Binding.Group("ignore", compact=True)
_REFRESH = Binding.Group("refresh", compact=True)
_INTERVAL = Binding.Group("interval", compact=True)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One user-facing action: what key runs it and how it is described everywhere."""

    id: str
    keys: str
    action: str
    description: str
    help: str
    show: bool = True
    key_display: str | None = None
    group: Binding.Group | None = None
    palette: bool = True

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.description,
            show=self.show,
            key_display=self.key_display,
            id=self.id,
            group=self.group,
            tooltip=self.help,
        )

    @property
    def display_keys(self) -> str:
        """Keys as the help screen shows them: `up / k`, `?`."""
        if self.key_display:
            return self.key_display
        names = [_KEY_NAMES.get(key, key) for key in self.keys.split(",")]
        return " / ".join(names)


_KEY_NAMES = {
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "question_mark": "?",
    "slash": "/",
    "shift+tab": "shift+tab",
    "space": "space",
    "enter": "enter",
    "escape": "esc",
}


DASHBOARD_ACTIONS: tuple[ActionSpec, ...] = (
    # Movement: not in the footer (no room at 80 columns) nor the palette (pointless there).
    ActionSpec(
        "dashboard.up",
        "up,k",
        "cursor_up",
        "up",
        "Previous test row or card",
        False,
        palette=False,
    ),
    ActionSpec(
        "dashboard.down",
        "down,j",
        "cursor_down",
        "down",
        "Next test row or card",
        False,
        palette=False,
    ),
    ActionSpec(
        "dashboard.left", "left,h", "card_left", "left", "Previous card", False, palette=False
    ),
    ActionSpec(
        "dashboard.right", "right,l", "card_right", "right", "Next card", False, palette=False
    ),
    ActionSpec("dashboard.next", "tab", "next_card", "next", "Next card", False, palette=False),
    ActionSpec(
        "dashboard.previous",
        "shift+tab",
        "previous_card",
        "previous",
        "Previous card",
        False,
        palette=False,
    ),
    ActionSpec(
        "dashboard.ignore",
        "space",
        "toggle_ignore",
        "ignore",
        "Ignore / enable the selected test on the selected device",
        key_display="␣",
        group=_IGNORE,
    ),
    ActionSpec(
        "dashboard.ignore_all",
        "I",
        "toggle_ignore_all",
        "ignore all",
        "Ignore / enable the selected test on all devices",
        group=_IGNORE,
    ),
    ActionSpec(
        "dashboard.refresh",
        "r",
        "refresh",
        "refresh",
        "Refresh the selected device (state + run every test)",
        group=_REFRESH,
    ),
    ActionSpec(
        "dashboard.refresh_all",
        "R",
        "refresh_all",
        "refresh all",
        "Refresh all devices",
        group=_REFRESH,
    ),
    ActionSpec(
        "dashboard.interval",
        "t",
        "set_interval",
        "interval",
        "Set the interval of the selected device",
        group=_INTERVAL,
    ),
    ActionSpec(
        "dashboard.interval_all",
        "T",
        "set_interval_all",
        "interval all",
        "Set the interval of all devices",
        group=_INTERVAL,
    ),
    ActionSpec("dashboard.run_now", "x", "run_now", "run", "Run the selected test now"),
    ActionSpec("dashboard.upload", "u", "upload", "upload", "Upload a script to every agent"),
    ActionSpec(
        "dashboard.scripts", "s", "scripts", "scripts", "Scripts: local dir vs config channel"
    ),
    ActionSpec(
        "dashboard.delete", "d", "delete_host", "delete", "Delete the selected host (confirm)"
    ),
    ActionSpec(
        "dashboard.detail",
        "enter",
        "detail",
        "detail",
        "Detail of the selected test",
        key_display="⏎",
    ),
    ActionSpec("dashboard.view", "v", "toggle_view", "view", "Switch tile / list view"),
    ActionSpec(
        "dashboard.filter",
        "slash",
        "filter",
        "filter",
        "Filter by name or status: ok warn crit unkn offline stale pending",
        key_display="/",
    ),
    ActionSpec(
        "dashboard.clear_filter",
        "escape",
        "clear_filter",
        "clear filter",
        "Clear the filter",
        show=False,
        palette=False,
    ),
)

APP_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "app.help", "question_mark", "help", "help", "Keys and what they do", key_display="?"
    ),
    ActionSpec("app.quit", "q", "quit", "quit", "Quit the dashboard"),
)

SCRIPTS_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "scripts.upload_missing",
        "m",
        "upload_missing",
        "upload missing",
        "Upload scripts missing or differing on the config channel",
    ),
    ActionSpec(
        "scripts.resend_all",
        "a",
        "resend_all",
        "re-send all",
        "Re-send every script (restarts File Sharing retention)",
    ),
    ActionSpec("scripts.reload", "r", "reload", "reload", "Compare again"),
    ActionSpec("scripts.upload", "u", "upload", "upload file", "Upload a script: file browser"),
    ActionSpec("scripts.back", "escape", "back", "back", "Back to the dashboard"),
)

DETAIL_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("detail.back", "escape", "back", "back", "Back to the dashboard"),
)


def bindings(actions: Iterable[ActionSpec]) -> list[BindingType]:
    return [spec.binding() for spec in actions]


def _footer_order(specs: Sequence[ActionSpec], first: Sequence[str]) -> tuple[ActionSpec, ...]:
    by_id = {spec.id: spec for spec in specs}
    return tuple(by_id[i] for i in first) + tuple(s for s in specs if s.id not in first)


DASHBOARD_BINDINGS: tuple[ActionSpec, ...] = (
    # `?` first so that even a narrow footer shows where every other key is explained;
    # the footer lists bindings in this order and cuts what does not fit at 80 columns.
    ActionSpec(
        "dashboard.help",
        "question_mark",
        "app.help",
        "help",
        "Keys",
        key_display="?",
        palette=False,
    ),
    *_footer_order(DASHBOARD_ACTIONS, ["dashboard.detail"]),
    ActionSpec("dashboard.quit", "q", "app.quit", "quit", "Quit", palette=False),
)


def help_sections() -> list[tuple[str, Sequence[ActionSpec]]]:
    """What the help screen lists, in order."""
    return [
        ("Dashboard", DASHBOARD_ACTIONS),
        ("Everywhere", APP_ACTIONS),
        ("Scripts screen", SCRIPTS_ACTIONS),
        ("Detail screen", DETAIL_ACTIONS),
    ]


class ReflexCommands(Provider):
    """Command palette entries built from the same specs as the key bindings.

    Only the actions of the screen the palette was opened on (plus the app's own) are
    offered, each run exactly as its key would run it.
    """

    def _commands(self) -> list[tuple[str, ActionSpec, Screen[object] | None]]:
        screen = self.screen
        specs: Sequence[ActionSpec] = getattr(screen, "ACTION_SPECS", ())
        commands: list[tuple[str, ActionSpec, Screen[object] | None]] = []
        for spec in specs:
            if spec.palette:
                commands.append((f"{spec.help} ({spec.display_keys})", spec, screen))
        for spec in APP_ACTIONS:
            commands.append((f"{spec.help} ({spec.display_keys})", spec, None))
        return commands

    async def _run(self, spec: ActionSpec, screen: Screen[object] | None) -> None:
        if screen is None:
            await self.app.run_action(spec.action)
        else:
            await screen.run_action(spec.action)

    async def discover(self) -> Hits:
        for title, spec, screen in self._commands():
            yield DiscoveryHit(title, partial(self._run, spec, screen), help=spec.id)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, spec, screen in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self._run, spec, screen), help=spec.id
                )
