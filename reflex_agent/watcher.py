"""Watch the scripts directory and turn bursts of file events into one change.

watchdog delivers events on its own observer thread. The only thing that
thread does here is hand the path over to the event loop with
``call_soon_threadsafe``; all debouncing and dispatching happens on the loop,
so the rest of the agent never sees a thread.

Editors save in many ways: write in place (several modify events), write a
temp file and rename it over the original (delete + create/move), or truncate
and write twice. Rather than interpret each pattern, every event for a path
(re)starts a short timer; when the path has been quiet for ``debounce``
seconds we look at the file system once and report what is true *now*:
the file exists (changed) or it does not (deleted). That yields exactly one
callback per save whatever the editor did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Path, bool], Awaitable[None]]
"""Called with (path, exists) once a path has been quiet for the debounce time."""

DEFAULT_DEBOUNCE = 0.1


class _Relay(FileSystemEventHandler):
    """Runs on watchdog's thread: forwards paths to the loop and nothing else."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: Callable[[str], None]) -> None:
        self._loop = loop
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(dest)
        for p in paths:
            path = p.decode() if isinstance(p, bytes) else p
            try:
                self._loop.call_soon_threadsafe(self._sink, path)
            except RuntimeError:
                # The loop closed while the observer was still delivering: nothing to do.
                return


class ScriptWatcher:
    """Debounced, loop-side view of changes to files directly inside ``directory``."""

    def __init__(
        self,
        directory: Path,
        on_change: ChangeCallback,
        *,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None:
        self.directory = directory
        self._on_change = on_change
        self._debounce = debounce
        self._timers: dict[Path, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.directory.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.daemon = True
        observer.schedule(_Relay(self._loop, self._event), str(self.directory), recursive=False)
        observer.start()
        self._observer = observer

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            # join() blocks; the observer thread stops within its poll timeout.
            await asyncio.to_thread(observer.join, 2.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _event(self, raw: str) -> None:
        path = Path(raw)
        if path.parent != self.directory:
            return
        assert self._loop is not None
        old = self._timers.pop(path, None)
        if old is not None:
            old.cancel()
        self._timers[path] = self._loop.call_later(self._debounce, self._fire, path)

    def _fire(self, path: Path) -> None:
        self._timers.pop(path, None)
        exists = path.is_file()
        task = asyncio.ensure_future(self._dispatch(path, exists))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, path: Path, exists: bool) -> None:
        try:
            await self._on_change(path, exists)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A failing handler must not stop the watcher from reporting later saves.
            log.exception("handling a change to %s failed", path.name)
