"""`ReflexApp`: the dashboard. Services (bus, state, config) are injected.

`make_app()` is the one factory: the CLI calls it with a config, tests call it with a bus
on a test hub (or none at all, for snapshots of fixed data with a frozen clock).

Repaint policy (issue 4 / issue 7): bus events mutate `Fleet` directly and post a
`FleetChanged` message that replaces any queued one; the handler schedules one repaint
at most every `REPAINT_INTERVAL` seconds, which hands the screens the set of devices
that changed. A burst of 2,000 results in a second is ~10 repaints, each touching only
the cards that changed, and only cards on screen are actually rendered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.errors import BusError
from reflex_core.events import FileEvent
from reflex_core.protocol import MAX_INTERVAL, MIN_INTERVAL, device_id
from reflex_tui.commands import APP_ACTIONS, ReflexCommands, bindings
from reflex_tui.controller import Controller, UploadRefused
from reflex_tui.ingest import Notice
from reflex_tui.messages import FleetChanged, MemberJoined, ShowNotice
from reflex_tui.screens.dashboard import DashboardScreen
from reflex_tui.state import Device, Fleet

logger = logging.getLogger(__name__)

REPAINT_INTERVAL = 0.1
"""At most ~10 repaints a second, however many results arrive."""
TICK_INTERVAL = 1.0
"""Ages ("4s ago") and staleness are re-evaluated once a second."""
RESEND_CHECK_INTERVAL = 3600.0
"""How often the dashboard looks for scripts older than `resend_after` on config_chan."""


class ReflexApp(App[None]):
    """The Reflex Observer dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "Reflex Observer"
    BINDINGS: ClassVar[list[BindingType]] = bindings(APP_ACTIONS)
    COMMANDS = App.COMMANDS | {ReflexCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        bus: Bus | None,
        state: Fleet,
        config: Config,
        *,
        connect: bool = True,
        owns_bus: bool = False,
        resend_check_interval: float | None = RESEND_CHECK_INTERVAL,
    ) -> None:
        super().__init__()
        self.bus = bus
        self.fleet = state
        self.config = config
        self.connect = connect and bus is not None
        self.owns_bus = owns_bus
        self.resend_check_interval = resend_check_interval
        self.controller: Controller | None = None
        if bus is not None:
            self.controller = Controller(
                bus,
                state,
                config,
                on_change=self._fleet_changed,
                on_notice=self._notice,
                on_file=self._file_event,
                on_member_joined=self._member_joined_event,
            )
        self._repaint_timer: Timer | None = None
        self._repaint_pending = False
        self._last_repaint = 0.0
        self.repaints = 0
        """Repaints done (benchmarks and tests read it)."""
        self.file_listeners: list[Callable[[FileEvent], None]] = []

    def get_default_screen(self) -> Screen[None]:
        return DashboardScreen(self.fleet)

    @property
    def dashboard(self) -> DashboardScreen:
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                return screen
        raise LookupError("no dashboard screen")

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.set_interval(TICK_INTERVAL, self._tick)
        if self.connect:
            self.start_controller()
            if self.resend_check_interval:
                self.set_interval(self.resend_check_interval, self.resend_old_scripts)

    @work(group="bus", name="connect and load devices", exit_on_error=False)
    async def start_controller(self) -> None:
        assert self.controller is not None
        await self.controller.start()
        if self.resend_check_interval:
            self.resend_old_scripts()

    async def on_unmount(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self.owns_bus and self.bus is not None:
            await self.bus.close()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications are literal text by default here: they quote host, test and file
        names from the network, which must never be read as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ------------------------------------------------------------------ repaint

    def _fleet_changed(self) -> None:
        self.post_message(FleetChanged())

    def _notice(self, notice: Notice) -> None:
        self.post_message(ShowNotice(notice.text, notice.severity))

    def _member_joined_event(self, device_id: str) -> None:
        self.post_message(MemberJoined(device_id))

    def _file_event(self, event: FileEvent) -> None:
        for listener in list(self.file_listeners):
            listener(event)

    @on(FleetChanged)
    def _schedule_repaint(self) -> None:
        if self._repaint_pending:
            return
        self._repaint_pending = True
        delay = self._last_repaint + REPAINT_INTERVAL - time.monotonic()
        if delay <= 0.001:
            # Not set_timer(0): Textual's timer divides by its interval.
            self.call_next(self._repaint)
        else:
            self._repaint_timer = self.set_timer(delay, self._repaint, name="repaint")

    def _repaint(self) -> None:
        self._repaint_pending = False
        self._repaint_timer = None
        self._last_repaint = time.monotonic()
        if not self.fleet.has_changes:
            return
        dirty, structure = self.fleet.take_changes()
        self.repaints += 1
        for screen in self.screen_stack:
            handler = getattr(screen, "fleet_changed", None)
            if handler is not None:
                handler(dirty, structure)

    def repaint_now(self) -> None:
        """Apply pending state changes at once (tests and snapshots, not the hot path)."""
        if self._repaint_timer is not None:
            self._repaint_timer.stop()
        self._repaint()

    def _tick(self) -> None:
        self.fleet.check_stale()
        for screen in self.screen_stack:
            handler = getattr(screen, "tick", None)
            if handler is not None:
                handler()
        if self.fleet.has_changes:
            self._schedule_repaint()

    @on(ShowNotice)
    def _show_notice(self, message: ShowNotice) -> None:
        self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]

    @on(MemberJoined)
    def _member_joined(self, message: MemberJoined) -> None:
        if self.controller is not None:
            self.run_worker(
                self.controller.load_device(message.device_id),
                name=f"load {message.device_id}",
                group="bus",
                exit_on_error=False,
            )

    # ------------------------------------------------------------------ workers

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker becomes something the operator sees.

        Worker.StateChanged does not bubble, so screens and dialogs forward theirs here
        (`reflex_tui.messages.ForwardWorkerFailures`)."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, UploadRefused | BusError):
            text = str(error)
        else:
            text = f"{type(error).__name__}: {error}"
            logger.error("worker %s failed", event.worker.name, exc_info=error)
        self.notify(f"{event.worker.name} failed: {text}", severity="error", timeout=10)

    def _run(self, coroutine: Awaitable[object], name: str, done: str | None = None) -> None:
        """Run a controller coroutine in a worker; notify `done` when it succeeds (failures
        reach `on_worker_state_changed`)."""

        async def job() -> None:
            await coroutine
            if done:
                self.notify(done)

        self.run_worker(job(), name=name, group="commands", exit_on_error=False)

    def _need_controller(self) -> Controller | None:
        if self.controller is None:
            self.notify("Not connected to PubNub", severity="error")
        return self.controller

    # ------------------------------------------------------------------ actions

    def toggle_ignore(self, device: Device | None, test: str | None, *, everywhere: bool) -> None:
        controller = self._need_controller()
        if controller is None or device is None or test is None:
            if device is not None and test is None:
                self.notify("Select a test first", severity="warning")
            return
        enable = test in device.effective_ignore()
        verb = "enable" if enable else "ignore"
        if not everywhere:
            names = set(device.effective_ignore())
            names = names - {test} if enable else names | {test}
            self._run(
                controller.set_ignore(device.id, tuple(sorted(names))),
                f"{verb} {test} on {device.id}",
                f"{verb.capitalize()} {test} on {device.name}: sent",
            )
            return
        changes: dict[str, tuple[str, ...]] = {}
        for member in self.fleet.members():
            names = set(member.effective_ignore())
            new = names - {test} if enable else names | {test}
            if new != names:
                changes[member.id] = tuple(sorted(new))
        self._run(
            controller.set_ignore_many(changes),
            f"{verb} {test} on all devices",
            f"{verb.capitalize()} {test} on {len(changes)} device(s): sent",
        )

    def refresh_devices(self, device: Device | None) -> None:
        controller = self._need_controller()
        if controller is None:
            return
        target = None if device is None else device.id
        label = "all devices" if device is None else device.name
        self._run(controller.refresh(target), f"refresh {label}", f"Refresh sent to {label}")

    def ask_interval(self, device: Device | None) -> None:
        from reflex_tui.dialogs.interval import IntervalDialog

        if device is None:
            current = None
            label = "all devices"
        else:
            current = device.effective_interval(self.fleet.default_interval)
            label = device.name

        def chosen(interval: int | None) -> None:
            if interval is None or self._need_controller() is None:
                return
            assert self.controller is not None
            assert MIN_INTERVAL <= interval <= MAX_INTERVAL
            if device is None:
                job = self.controller.set_interval_all(interval)
            else:
                job = self.controller.set_interval(device.id, interval)
            self._run(job, f"set interval of {label}", f"Interval {interval}s sent to {label}")

        self.push_screen(IntervalDialog(label, current), chosen)

    def run_now(self, device: Device | None, test: str | None) -> None:
        controller = self._need_controller()
        if controller is None or device is None:
            return
        what = test or "all tests"
        self._run(
            controller.run_now(device.id, test),
            f"run {what} on {device.id}",
            f"Run {what} now on {device.name}: sent",
        )

    def ask_delete(self, device: Device | None) -> None:
        from reflex_tui.dialogs.confirm import ConfirmDialog

        if device is None:
            return
        if device.online:
            consequence = (
                f"The agent on {device.name} is still running (online): it will come back "
                "when it registers again. Stop it first with `reflex-agent exit` on the host."
            )
        else:
            consequence = f"The agent on {device.name} is offline."
        question = f"Delete host {device.name} ({device.id}) from the dashboard?"

        def confirmed(yes: bool | None) -> None:
            if yes and self._need_controller() is not None:
                self._delete(device.id, device.name)

        self.push_screen(ConfirmDialog(question, consequence, confirm_label="Delete"), confirmed)

    def _delete(self, ident: str, name: str) -> None:
        controller = self.controller
        assert controller is not None

        async def job() -> None:
            online = await controller.delete_host(ident)
            suffix = " Its agent is still running and may re-register." if online else ""
            self.notify(f"Deleted {name}.{suffix}", severity="warning" if online else "information")

        self.run_worker(job(), name=f"delete {ident}", group="commands", exit_on_error=False)

    def open_upload(self) -> None:
        from reflex_tui.dialogs.upload import UploadDialog

        self.push_screen(UploadDialog(Path(self.config.scripts)))

    def open_scripts(self) -> None:
        from reflex_tui.screens.scripts import ScriptsScreen

        self.push_screen(ScriptsScreen())

    def open_detail(self, device: Device | None, test: str | None) -> None:
        from reflex_tui.screens.detail import DetailScreen

        if device is None or test is None:
            self.notify("Select a test first", severity="warning")
            return
        self.push_screen(DetailScreen(self.fleet, device.id, test))

    def action_help(self) -> None:
        from reflex_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def resend_old_scripts(self) -> None:
        controller = self.controller
        if controller is None:
            return

        async def job() -> None:
            names = await controller.resend_old()
            if names:
                self.notify(
                    f"Re-sent {len(names)} script(s) older than "
                    f"{self.config.resend_after:g} days: {', '.join(names)}"
                )

        self.run_worker(
            job(), name="re-send old scripts", group="resend", exclusive=True, exit_on_error=False
        )


def dashboard_user_id() -> str:
    """The dashboard's PubNub user id: stable per host (PubNub bills unique ids), and
    with a '.' so it can never be mistaken for a device id ([a-z0-9_-] only)."""
    import socket

    return f"reflex-tui.{device_id(socket.gethostname())}"


def make_app(
    config: Config,
    *,
    bus: Bus | None = None,
    fleet: Fleet | None = None,
    clock: Callable[[], float] | None = None,
    connect: bool = True,
    resend_check_interval: float | None = RESEND_CHECK_INTERVAL,
) -> ReflexApp:
    """The one way to build the app (CLI and tests).

    Without `bus`, one is created from the config (and closed with the app) unless
    `connect` is False, which gives an offline app over `fleet` (snapshot tests).
    """
    owns_bus = False
    if bus is None and connect:
        bus = Bus(BusSettings.from_config(config, user_id=dashboard_user_id()))
        owns_bus = True
    if fleet is None:
        fleet = Fleet(clock=clock or time.time)
    elif clock is not None:
        fleet.clock = clock
    fleet.default_interval = config.interval
    fleet.membership_channel = config.channel
    fleet.hub_url = config.hub_url
    fleet.local_hub = config.local
    return ReflexApp(
        bus,
        fleet,
        config,
        connect=connect,
        owns_bus=owns_bus,
        resend_check_interval=resend_check_interval,
    )
