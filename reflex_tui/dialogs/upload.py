"""`u`: pick a script in a file browser, preview it, upload it to every agent.

The browser starts in the local scripts dir and lists only what an agent can run
(`.py`, `.sh`; hidden entries left out). Names and sizes the agents would refuse are
refused here, with the same reason, before anything is copied or sent. While the upload
runs a progress bar shows; the outcome is a notification (and an inline error on
failure, so the dialog stays open for another try).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.syntax import Syntax
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from reflex_tui.messages import ForwardWorkerFailures
from reflex_tui.script_sync import is_script_candidate, upload_problem
from reflex_tui.text import format_size, inert, one_line

if TYPE_CHECKING:
    from reflex_tui.app import ReflexApp

PREVIEW_BYTES = 64 * 1024


class ScriptTree(DirectoryTree):
    """A DirectoryTree showing directories and runnable scripts only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        shown = []
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or (path.is_file() and is_script_candidate(path)):
                    shown.append(path)
            except OSError:
                continue
        return shown


def read_preview(path: Path) -> tuple[str, int]:
    """The start of the file as text (undecodable bytes replaced) and its full size."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        data = handle.read(PREVIEW_BYTES)
    text = data.decode("utf-8", "replace")
    if size > PREVIEW_BYTES:
        text += f"\n… ({format_size(size)} in total)"
    return text, size


class UploadDialog(ForwardWorkerFailures, ModalScreen[bool]):
    """Returns True once a file was uploaded, False when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="upload.cancel"),
        Binding("u", "upload", "upload", id="upload.confirm"),
        Binding("backspace", "parent", "parent dir", id="upload.parent"),
    ]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start if start.is_dir() else Path.home()
        self.chosen: Path | None = None
        self.chosen_size = 0
        self.preview_text = ""
        self.uploading = False

    @property
    def reflex_app(self) -> ReflexApp:
        from reflex_tui.app import ReflexApp

        assert isinstance(self.app, ReflexApp)
        return self.app

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Upload a script to every agent", classes="title")
            yield Input(str(self.start), id="root", placeholder="directory")
            with Horizontal(id="browser"):
                yield ScriptTree(self.start, id="tree")
                with VerticalScroll(id="preview"):
                    yield Static(Content("Select a .py or .sh file"), id="preview-text")
            yield Static("", id="selected")
            yield Static("", id="error", classes="error")
            yield ProgressBar(total=None, show_eta=False, id="progress")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Upload (u)", id="upload", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#progress").display = False
        self.query_one(ScriptTree).focus()

    # ------------------------------------------------------------------ browsing

    @on(Input.Submitted, "#root")
    def _reroot(self, event: Input.Submitted) -> None:
        path = Path(event.value).expanduser()
        if not path.is_dir():
            self._error(f"Not a directory: {event.value}")
            return
        self._set_root(path)

    def _set_root(self, path: Path) -> None:
        tree = self.query_one(ScriptTree)
        tree.path = path
        self.query_one("#root", Input).value = str(path)
        tree.focus()

    def action_parent(self) -> None:
        tree = self.query_one(ScriptTree)
        current = Path(tree.path)
        if current.parent != current:
            self._set_root(current.parent)

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.choose(Path(event.path))

    @on(DirectoryTree.NodeHighlighted)
    def _highlighted(self, event: DirectoryTree.NodeHighlighted[object]) -> None:
        data = event.node.data
        path = getattr(data, "path", None)
        if isinstance(path, Path) and path.is_file():
            self.choose(path)

    def choose(self, path: Path) -> None:
        """Select `path` for upload and preview it (the read happens in a worker)."""
        self.chosen = path
        self._error("")
        self.query_one("#selected", Static).update(Content(f"Selected: {inert(path.name)}"))
        self.query_one("#upload", Button).disabled = True
        self.load_preview(path)

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def load_preview(self, path: Path) -> None:
        try:
            text, size = await asyncio.to_thread(read_preview, path)
        except OSError as exc:
            self._error(f"Cannot read {path.name}: {exc.strerror or exc}")
            return
        if get_current_worker().is_cancelled or path != self.chosen:
            return
        self.chosen_size = size
        self.preview_text = text
        lexer = "python" if path.suffix == ".py" else "bash"
        syntax = Syntax(inert(text, keep_newlines=True), lexer, theme="ansi_dark", word_wrap=False)
        self.query_one("#preview-text", Static).update(syntax)
        problem = upload_problem(path.name, size)
        label = f"Selected: {inert(path.name)} ({format_size(size)})"
        self.query_one("#selected", Static).update(Content(label))
        if problem:
            self._error(f"Agents would refuse this file: {problem}")
        self.query_one("#upload", Button).disabled = problem is not None

    def _error(self, text: str) -> None:
        self.query_one("#error", Static).update(Content(one_line(text)))

    # ------------------------------------------------------------------ upload

    @on(Button.Pressed, "#upload")
    def action_upload(self) -> None:
        path = self.chosen
        if path is None or self.uploading:
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            self._error(f"Cannot read {path.name}: {exc.strerror or exc}")
            return
        problem = upload_problem(path.name, size)
        if problem:
            self._error(f"Agents would refuse this file: {problem}")
            self.notify(f"Not uploaded: {path.name}: {problem}", severity="error", markup=False)
            return
        self.run_upload(path)

    @work(exclusive=True, group="upload", exit_on_error=False)
    async def run_upload(self, path: Path) -> None:
        controller = self.reflex_app.controller
        if controller is None:
            self._error("Not connected")
            return
        self.uploading = True
        self.query_one("#progress").display = True
        self.query_one("#upload", Button).disabled = True
        self._error("")
        try:
            result = await controller.upload(path)
        except Exception as exc:
            self._error(f"Upload failed: {exc}")
            self.notify(f"Upload of {path.name} failed: {exc}", severity="error", markup=False)
            return
        finally:
            self.uploading = False
            self.query_one("#progress").display = False
            self.query_one("#upload", Button).disabled = False
        where = f" (copied to {result.copied_to.parent})" if result.copied_to else ""
        self.notify(
            f"Uploaded {result.name} to {controller.config.config_chan}{where}", markup=False
        )
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.uploading:
            self.workers.cancel_group(self, "upload")
        self.dismiss(False)
