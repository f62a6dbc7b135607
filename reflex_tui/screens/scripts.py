"""`s`: the local scripts dir next to the files on `config_chan`, and the jobs the seed's
web server did with them: upload what is missing or differs, re-send everything."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from reflex_core.events import FileEvent
from reflex_tui.commands import SCRIPTS_ACTIONS, ActionSpec, bindings
from reflex_tui.messages import ForwardWorkerFailures
from reflex_tui.script_sync import ScriptRow, SyncStatus
from reflex_tui.text import format_short_datetime, format_size, one_line

if TYPE_CHECKING:
    from reflex_tui.app import ReflexApp

STATUS_STYLE = {  # Rich styles: DataTable cells are Rich renderables
    SyncStatus.SAME: "green",
    SyncStatus.DIFFERS: "bold yellow",
    SyncStatus.LOCAL_ONLY: "bold red",
    SyncStatus.REMOTE_ONLY: "cyan",
}


class ScriptsScreen(ForwardWorkerFailures, Screen[None]):
    """Compare, upload missing/differing, re-send all."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(SCRIPTS_ACTIONS)
    ACTION_SPECS: ClassVar[tuple[ActionSpec, ...]] = SCRIPTS_ACTIONS

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ScriptRow] = []
        self.busy = False

    @property
    def reflex_app(self) -> ReflexApp:
        from reflex_tui.app import ReflexApp

        assert isinstance(self.app, ReflexApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="scripts-header")
        table: DataTable[Text | str] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns("Name", "Status", "Local", "Modified", "Remote", "Uploaded")
        yield table
        yield ProgressBar(total=None, show_eta=False, id="scripts-progress")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        config = self.reflex_app.config
        header = Content.assemble(
            ("Local ", "$text-muted"),
            one_line(str(config.scripts)),
            ("  vs  channel ", "$text-muted"),
            one_line(config.config_chan),
            ("   ", ""),
            ("re-sent automatically after ", "$text-muted"),
            f"{config.resend_after:g} days",
        )
        self.query_one("#scripts-header", Static).update(header)
        self.query_one("#scripts-progress").display = False
        self.reflex_app.file_listeners.append(self._file_event)
        self.reload()

    def on_unmount(self) -> None:
        listeners = self.reflex_app.file_listeners
        if self._file_event in listeners:
            listeners.remove(self._file_event)

    def _file_event(self, event: FileEvent) -> None:
        if not self.busy:
            self.reload()

    # ------------------------------------------------------------------ loading

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.query_one("#scripts-progress").display = busy

    @work(exclusive=True, group="scripts", exit_on_error=False, name="compare scripts")
    async def reload(self) -> None:
        controller = self.reflex_app.controller
        if controller is None:
            return
        self._set_busy(True)
        try:
            rows = await controller.compare_scripts()
        finally:
            self._set_busy(False)
        self.show_rows(rows)

    def show_rows(self, rows: list[ScriptRow]) -> None:
        self.rows = rows
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            local, remote = row.local, row.remote
            # Text, not str: DataTable would read a str as markup (names come from the net).
            table.add_row(
                Text(one_line(row.name)),
                Text(row.status.value, style=STATUS_STYLE[row.status]),
                format_size(local.size) if local else "–",
                format_short_datetime(local.mtime) if local else "–",
                format_size(remote.size) if remote else "–",
                format_short_datetime(row.remote_created),
                key=row.name,
            )
        if not rows:
            table.add_row(Text("(no scripts here or on the channel)"), "", "", "", "", "")

    # ------------------------------------------------------------------ actions

    def action_reload(self) -> None:
        self.reload()

    def action_upload_missing(self) -> None:
        todo = [row for row in self.rows if row.needs_upload]
        if not todo:
            self.notify("Nothing to upload: the channel has every local script", markup=False)
            return
        self._send(todo, resend=False)

    def action_resend_all(self) -> None:
        from reflex_tui.dialogs.confirm import ConfirmDialog

        todo = [row for row in self.rows if row.local is not None or row.remote is not None]
        if not todo:
            self.notify("No scripts to re-send", markup=False)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._send(todo, resend=True)

        self.app.push_screen(
            ConfirmDialog(
                f"Re-send all {len(todo)} scripts to the config channel?",
                "Every agent downloads them again; File Sharing's retention starts over.",
                confirm_label="Re-send",
            ),
            confirmed,
        )

    def _send(self, rows: list[ScriptRow], *, resend: bool) -> None:
        controller = self.reflex_app.controller
        if controller is None:
            return

        async def job() -> None:
            self._set_busy(True)
            try:
                if resend:
                    names = await controller.resend(rows)
                else:
                    names = await controller.upload_rows(rows)
            finally:
                self._set_busy(False)
            self.notify(f"Sent {len(names)} script(s): {', '.join(names)}", markup=False)
            self.reload()

        verb = "re-send scripts" if resend else "upload scripts"
        self.run_worker(job(), name=verb, group="scripts-send", exclusive=True, exit_on_error=False)

    def action_upload(self) -> None:
        self.reflex_app.open_upload()

    def on_screen_resume(self) -> None:
        if self.rows:
            self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row that needs it uploads that one script."""
        name = event.row_key.value if event.row_key is not None else None
        for row in self.rows:
            if row.name == name and row.needs_upload:
                self._send([row], resend=False)
