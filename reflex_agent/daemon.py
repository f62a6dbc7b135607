"""`reflex-agent join`: the pieces of the agent wired into one asyncio program.

One event loop runs everything (watchdog's observer thread only hands paths to the loop):

* **Registration.** Ignore list and interval come from App Context `custom` (the dashboard
  may have changed them while we were away), else the local state file, else the config.
  Join then writes uuid metadata (`name` = real host name, `custom` merged, never wiped),
  the membership on `channel`, subscribes `config_chan` + `ignore_chan` (presence heartbeats)
  and publishes `state`. A hub that is down at start does not stop the agent: registration
  is retried in the background and results are buffered.
* **Rounds** on a drift-corrected grid (`scheduler.Schedule`), at most 4 scripts at a time.
  A round waits for its scripts at most `min(0.9 * interval, 5 s)`: whatever is still
  running then (a hanging check waiting for its timeout) is reported in a message of its
  own when it finishes, so one slow check never delays the others' results or pushes the
  schedule. A script still running from an earlier round is not started twice.
* **Changes.** The watcher (debounced 0.1 s) re-scans, runs the changed script at once and
  publishes its result alone; `state` follows when the set of scripts changed.
* **Commands** from `ignore_chan` are decided by the pure `commands.decide` and carried out
  one at a time, in arrival order (so two quick `set_ignore`s persist in the right order).
* **Files** from `config_chan` go through `sync.FileSync` (one function to disk, which
  verifies the operator's signature first); the watcher then sees the new file like any
  other change.
* **Publishing.** Everything goes to `device.<id>` only, through one ordered, bounded outbox
  (`outbox.Outbox`, 500 messages): results keep their original timestamps through an outage
  and arrive in order. `state` takes the same queue rather than a side path: it is rare,
  its order relative to results matters to a reader of history (the interval a result was
  produced under), and a `state` that could not be sent is then sent after reconnecting
  instead of being lost until the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from reflex_agent.commands import AgentSettings, Applied, Malformed, decide
from reflex_agent.discovery import is_candidate_name
from reflex_agent.outbox import Outbox
from reflex_agent.perfdata import ParsedOutput, PerfDatum
from reflex_agent.registry import Catalog, Check, build_catalog, received_dir
from reflex_agent.runner import parse_outcome, run_script
from reflex_agent.scheduler import Schedule, sleep_until
from reflex_agent.state_store import LocalState, StateStore
from reflex_agent.sync import FileSync, ReceivedBook, RemoteFile
from reflex_agent.watcher import ScriptWatcher
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import Config
from reflex_core.errors import BusError
from reflex_core.events import ConnectionEvent, FileEvent, Message, UuidMetadata
from reflex_core.protocol import (
    MAX_INTERVAL,
    MAX_REJECTED,
    MAX_SCRIPTS,
    MIN_INTERVAL,
    DeviceSettings,
    Perf,
    ProtocolError,
    Result,
    ResultsMessage,
    StateMessage,
    Status,
    decode_custom,
    device_channel,
    encode_custom,
    fit_results,
    fit_state,
    message_budget,
    normalize_ignore_list,
)
from reflex_core.signing import TrustPolicy

__all__ = [
    "CONCURRENCY",
    "OUTBOX_LIMIT",
    "Agent",
    "make_result",
    "resolve_settings",
    "round_patience",
    "script_env",
]

log = logging.getLogger("reflex_agent")

CONCURRENCY = 4
OUTBOX_LIMIT = 500
#: Longest a round waits for its scripts before publishing what it has (see module doc).
ROUND_PATIENCE_MAX = 5.0
#: Commands waiting to be carried out; beyond this a flood is dropped (with one warning).
COMMAND_QUEUE_LIMIT = 1000
#: On shutdown, how long queued messages may take to go out before we leave anyway.
SHUTDOWN_FLUSH = 1.0
REGISTER_RETRY_MAX = 60.0
#: Presence leave on shutdown is best effort: SIGTERM must end the agent within ~2 s.
LEAVE_WITHIN = 1.5
#: Config keys whose `REFLEX_*` environment variables scripts must not inherit.
_SECRET_ENV = ("REFLEX_PUB", "REFLEX_SUB", "REFLEX_CIPHER_KEY", "REFLEX_AUTH_KEY")


# --------------------------------------------------------------------------- pure helpers


def round_patience(interval: float) -> float:
    """How long a round waits for its scripts: below one interval, so the next tick is
    never missed because of one slow script, and at most ROUND_PATIENCE_MAX."""
    return max(0.05, min(0.9 * interval, ROUND_PATIENCE_MAX))


def script_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment checks run with: ours, minus the PubNub keys (a script received
    from the network must not be able to read the fleet's credentials from it)."""
    return {k: v for k, v in environ.items() if k not in _SECRET_ENV}


def _perf(datum: PerfDatum) -> Perf | None:
    """Protocol perfdata from parsed perfdata; thresholds the protocol cannot carry are
    dropped rather than losing the value, and an unusable datum is skipped."""
    for warn, crit in ((datum.warn, datum.crit), (None, None)):
        try:
            return Perf(
                label=datum.label[:128].replace("\n", " ") or "value",
                value=datum.value,
                uom=datum.uom[:16],
                warn=warn,
                crit=crit,
                min=datum.min,
                max=datum.max,
            )
        except ProtocolError:
            continue
    return None


def make_result(test: str, parsed: ParsedOutput, duration_ms: int, ts: float) -> Result:
    """A wire `Result` from a parsed run. Never raises: output the protocol cannot carry
    degrades (dropped perf item, no value) instead of losing the result."""
    perf = [p for p in (_perf(d) for d in parsed.perf) if p is not None]
    value = parsed.value
    unit = parsed.unit
    for attempt in range(2):
        try:
            return Result.build(
                test,
                parsed.status,
                parsed.output,
                long_output=parsed.long_output,
                value=value,
                unit=unit.replace("\n", " "),
                perf=perf,
                duration_ms=max(0, int(duration_ms)),
                ts=ts,
            )
        except ProtocolError as exc:
            if attempt:
                return Result.build(
                    test, Status.UNKNOWN, f"agent could not encode the result: {exc}", ts=ts
                )
            value, unit, perf = None, "", []
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_settings(
    remote: DeviceSettings, local: LocalState, config: Config
) -> tuple[AgentSettings, str, str]:
    """Ignore list and interval at start, each from the first source that has it:
    App Context `custom`, then the local state file, then the config.

    Returns (settings, where the ignore list came from, where the interval came from).
    """
    ignore: tuple[str, ...] | None = remote.ignore
    ignore_from = "App Context"
    if ignore is None and local.ignored is not None:
        try:
            ignore = normalize_ignore_list(local.ignored)
            ignore_from = "state file"
        except ProtocolError:
            ignore = None
    if ignore is None:
        ignore, ignore_from = tuple(config.ignore_list), "config"

    interval: int | None = remote.interval
    interval_from = "App Context"
    if interval is None and local.interval is not None:
        if MIN_INTERVAL <= local.interval <= MAX_INTERVAL:
            interval, interval_from = local.interval, "state file"
    if interval is None:
        interval, interval_from = config.interval, "config"
    return AgentSettings(ignore=ignore, interval=interval), ignore_from, interval_from


# --------------------------------------------------------------------------- the agent


class Agent:
    """One device's agent. `run()` serves until cancelled; `run_once()` is `join --once`."""

    def __init__(self, config: Config, *, bus: Bus | None = None) -> None:
        self.config = config
        self.name = config.device_name
        self.id = config.device_id
        self.channel = device_channel(self.id)
        self.scripts_dir = Path(os.path.abspath(config.scripts))
        self.received_dir = received_dir(self.scripts_dir)
        self.store = StateStore(config.state_dir / f"{self.id}.json")
        self.bus = bus or Bus(BusSettings.from_config(config, user_id=self.id))
        self.settings = AgentSettings(tuple(config.ignore_list), config.interval)
        self.catalog = Catalog()
        self.files = FileSync(
            self.bus,
            config.config_chan,
            self.received_dir,
            policy=TrustPolicy.from_config(config),
            book=ReceivedBook(self.store),
        )
        self.outbox: Outbox[ResultsMessage | StateMessage] = Outbox(self._send, limit=OUTBOX_LIMIT)
        self._budget = message_budget(bool(config.cipher_key))
        self._env = script_env(os.environ)
        self._seq = 1
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._running: dict[str, asyncio.Task[Result]] = {}
        self._alone: set[asyncio.Task[Result]] = set()  # results published on their own
        self._rerun: set[str] = set()
        self._background: set[asyncio.Task[object]] = set()
        self._commands: asyncio.Queue[object] = asyncio.Queue(COMMAND_QUEUE_LIMIT)
        self._wake = asyncio.Event()  # re-read the schedule (interval changed)
        self._sync_now = asyncio.Event()
        self._register_now = asyncio.Event()
        self._registered = False
        self._remote_known = False  # App Context settings read (or superseded) yet?
        self._sync_failed = False
        self._schedule: Schedule | None = None
        self._watchers: list[ScriptWatcher] = []
        self._state_fp: object = None
        self._statuses: dict[str, str] = {}
        self._rounds = 0
        self._known_shadowed: set[tuple[Path, Path]] = set()
        self._known_conflicts: set[Path] = set()
        self._dropped_commands = 0

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Join, then serve until cancelled (SIGINT/SIGTERM); always leaves cleanly."""
        await self.bus.start()
        try:
            await self._join()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.outbox.run())
                group.create_task(self._round_loop())
                group.create_task(self._command_loop())
                group.create_task(self._sync_loop())
                group.create_task(self._register_loop())
        finally:
            await self._shutdown()

    async def run_once(self) -> bool:
        """Run every non-ignored script once and publish one `results` message.

        Registers the device on the way (best effort). Returns True if the results were
        published. Does not fetch scripts from `config_chan` (it runs what is on disk).
        """
        await self.bus.start()
        try:
            meta = await self._read_metadata()
            self._adopt_start_settings(meta)
            self.files.sweep()  # received scripts run only if still vouched for
            self._refresh_catalog(publish=False)
            try:
                await self._register(meta)
            except BusError as exc:
                log.warning("could not register %s: %s", self.id, exc)
            round_ts = time.time()
            checks = self._due_checks()
            results = await asyncio.gather(*(self._execute(c) for c in checks))
            sent = 0
            for message in self._results_messages(results, round_ts):
                try:
                    await self.bus.publish(self.channel, message.to_wire())
                except BusError as exc:
                    log.error("could not publish results: %s", exc)
                    return False
                sent += len(message.results)
            log.info("published %d result(s) on %s", sent, self.channel)
            return True
        finally:
            await self.bus.close()

    async def _join(self) -> None:
        log.info(
            "joining as %s (id %s) on %s, scripts in %s",
            self.name,
            self.id,
            self.config.hub_url or "PubNub",
            self.scripts_dir,
        )
        policy = self.files.policy
        worry = policy.allow_unsigned or not policy.trusted_keys
        log.log(logging.WARNING if worry else logging.INFO, "%s", policy.describe())
        meta = await self._read_metadata()
        self._adopt_start_settings(meta)
        self._save_local()
        try:
            self.received_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning(
                "cannot create %s (%s): scripts from %s cannot be stored",
                self.received_dir,
                exc.strerror or exc,
                self.config.config_chan,
            )
        self.bus.add_listener(
            on_message=self._on_message, on_file=self._on_file, on_connection=self._on_connection
        )
        try:
            await self._register(meta)
        except BusError as exc:
            log.warning("registration failed (%s); retrying in the background", exc)
            self._register_now.set()
        await self.bus.subscribe([self.config.config_chan, self.config.ignore_chan])
        try:
            await self.files.full_sync()
        except BusError as exc:
            self._sync_failed = True
            log.warning("cannot list scripts on %s: %s", self.config.config_chan, exc)
        self._refresh_catalog(publish=False)
        self._publish_state()
        for directory in (self.scripts_dir, self.received_dir):
            watcher = ScriptWatcher(directory, self._on_script_change)
            try:
                watcher.start()
            except OSError as exc:
                log.warning("cannot watch %s: %s", directory, exc.strerror or exc)
                continue
            self._watchers.append(watcher)
        tests = ", ".join(self.catalog.checks) or "none"
        log.info(
            "joined: %d script(s) (%s), interval %d s, ignoring %s",
            len(self.catalog.checks),
            tests,
            self.settings.interval,
            ", ".join(self.settings.ignore) or "nothing",
        )

    async def _shutdown(self) -> None:
        """Stop watching, kill running checks, flush briefly, leave presence."""
        for watcher in self._watchers:
            with contextlib.suppress(Exception):
                await watcher.stop()
        self._watchers.clear()
        tasks = [*self._running.values(), *self._background]
        for task in tasks:
            task.cancel()
        if tasks:
            # Each cancelled run kills its process group before it returns.
            await asyncio.wait(tasks, timeout=5.0)
        if len(self.outbox) and self.bus.connection.connected:
            flusher = asyncio.create_task(self.outbox.run())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_FLUSH):
                    await self.outbox.drained()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if len(self.outbox):
            log.warning("%d message(s) not published at shutdown", len(self.outbox))
        # Unsubscribe (stops the long-poll, then sends the leave) before close(): close()
        # alone sends the leave first, and a long-poll the SDK issues meanwhile makes the
        # server count us present again until the presence timeout (reported facade issue).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LEAVE_WITHIN):
                await self.bus.unsubscribe([self.config.config_chan, self.config.ignore_chan])
        await self.bus.close()
        log.info("left")

    # ------------------------------------------------------------------ settings

    async def _read_metadata(self) -> UuidMetadata | None:
        try:
            meta = await self.bus.get_uuid_metadata(self.id)
        except BusError as exc:
            log.warning("cannot read App Context for %s: %s", self.id, exc)
            return None
        self._remote_known = True
        return meta

    def _adopt_start_settings(self, meta: UuidMetadata | None) -> None:
        remote = decode_custom(meta.custom) if meta is not None else DeviceSettings()
        self.settings, ignore_from, interval_from = resolve_settings(
            remote, self.store.load(), self.config
        )
        log.info(
            "ignore list %s (from %s), interval %d s (from %s)",
            ", ".join(self.settings.ignore) or "empty",
            ignore_from,
            self.settings.interval,
            interval_from,
        )

    def _save_local(self) -> None:
        try:
            state = self.store.load()
            state.ignored = list(self.settings.ignore)
            state.interval = self.settings.interval
            self.store.save(state)
        except OSError as exc:
            log.warning("cannot write state file %s: %s", self.store.path, exc.strerror or exc)

    async def _register(self, meta: UuidMetadata | None = None, *, fresh: bool = False) -> None:
        """uuid metadata (name, merged custom) and the membership. Raises BusError.

        With `fresh`, App Context is read first. If it could not be read at start, the ignore
        list / interval stored there (the dashboard may have changed them while we were away)
        is adopted now, unless a command has changed ours since (then ours is newer).
        """
        if fresh:
            meta = await self.bus.get_uuid_metadata(self.id)
            if meta is not None and not self._remote_known:
                remote = decode_custom(meta.custom)
                new = AgentSettings(
                    remote.ignore if remote.ignore is not None else self.settings.ignore,
                    remote.interval if remote.interval is not None else self.settings.interval,
                )
                if new != self.settings:
                    log.info(
                        "adopting App Context settings: ignore %s, interval %d s",
                        ", ".join(new.ignore) or "nothing",
                        new.interval,
                    )
                    self._set_settings(new)
                    self._save_local()
                    self._publish_state()
            self._remote_known = True
        custom = encode_custom(
            self.settings.ignore,
            self.settings.interval,
            base=meta.custom if meta is not None else None,
        )
        await self.bus.set_uuid_metadata(self.id, name=self.name, custom=custom)
        await self.bus.join_channel(self.config.channel)
        self._registered = True

    async def _persist(self) -> None:
        """Write the settings to the local file and to App Context (keeping other keys)."""
        self._save_local()
        try:
            meta = await self.bus.get_uuid_metadata(self.id)
            custom = encode_custom(
                self.settings.ignore,
                self.settings.interval,
                base=meta.custom if meta is not None else None,
            )
            await self.bus.set_uuid_metadata(self.id, name=self.name, custom=custom)
        except BusError as exc:
            log.warning("cannot store settings in App Context (%s); will retry", exc)
            self._registered = False
            self._register_now.set()

    def _set_settings(self, new: AgentSettings, *, reschedule: bool = True) -> None:
        """Take new settings; an interval change re-bases the schedule at once."""
        old = self.settings
        self.settings = new
        if reschedule and new.interval != old.interval and self._schedule is not None:
            self._schedule.set_interval(new.interval, asyncio.get_running_loop().time())
            self._wake.set()

    async def _register_loop(self) -> None:
        """Retry registration after a failure, with back-off, until it works."""
        delay = 1.0
        while True:
            await self._register_now.wait()
            self._register_now.clear()
            while not self._registered:
                try:
                    await self._register(fresh=True)
                except BusError as exc:
                    log.debug("registration retry failed: %s", exc)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._register_now.wait()
                    self._register_now.clear()
                    delay = min(delay * 2, REGISTER_RETRY_MAX)
                else:
                    log.info("registered %s on %s", self.id, self.config.channel)
                    delay = 1.0

    # ------------------------------------------------------------------ publishing

    async def _send(self, message: ResultsMessage | StateMessage) -> None:
        """Outbox sender: a transient failure raises (the outbox keeps and retries it); a
        message the hub refuses outright (4xx) would be refused forever, so it is dropped
        with an error instead of blocking every later result."""
        try:
            await self.bus.publish(self.channel, message.to_wire())
        except BusError as exc:
            if exc.transient:
                raise
            log.error("dropped a %s message the network refused: %s", message.kind, exc)

    def _results_messages(self, results: Iterable[Result], ts: float) -> list[ResultsMessage]:
        kept = tuple(r for r in results if not self.settings.ignores(r.test))
        message = ResultsMessage(
            host=self.name,
            id=self.id,
            seq=self._seq,
            ts=ts,
            interval=self.settings.interval,
            results=kept,
        )
        parts = fit_results(message, self._budget)
        self._seq = parts[-1].seq + 1
        for result in kept:
            self._note_status(result)
        return parts

    def _emit_results(self, results: Iterable[Result], ts: float) -> None:
        for message in self._results_messages(results, ts):
            self.outbox.put(message)

    def _note_status(self, result: Result) -> None:
        previous = self._statuses.get(result.test)
        status = result.status.value
        self._statuses[result.test] = status
        if previous is not None and previous != status:
            log.info("%s: %s -> %s: %s", result.test, previous, status, result.output)

    def _state_fingerprint(self) -> object:
        return (self.settings, self.catalog.fingerprint(), self.files.rejected)

    def _publish_state(self) -> None:
        rejected = (*self.catalog.bad_names, *self.files.rejected)
        message = StateMessage(
            host=self.name,
            id=self.id,
            ts=time.time(),
            interval=self.settings.interval,
            ignored=self.settings.ignore,
            scripts=self.catalog.entries()[:MAX_SCRIPTS],
            rejected=rejected[:MAX_REJECTED],
        )
        self.outbox.put(fit_state(message, self._budget))
        self._state_fp = self._state_fingerprint()

    def _refresh_catalog(self, *, publish: bool = True) -> Catalog:
        """Re-scan both directories; publish `state` if what it reports changed."""
        self.catalog = build_catalog(self.scripts_dir)
        for local, received in self.catalog.shadowed:
            if (local, received) not in self._known_shadowed:
                log.info("%s is replaced by the received %s", local.name, received.name)
        self._known_shadowed = set(self.catalog.shadowed)
        for conflict in self.catalog.conflicts:
            if conflict.skipped not in self._known_conflicts:
                log.warning(
                    "%s not run: test %r is already %s",
                    conflict.skipped.name,
                    conflict.test,
                    conflict.kept.name,
                )
        self._known_conflicts = {c.skipped for c in self.catalog.conflicts}
        if publish and self._state_fingerprint() != self._state_fp:
            self._publish_state()
        return self.catalog

    # ------------------------------------------------------------------ running checks

    def _due_checks(self) -> list[Check]:
        return [c for c in self.catalog.checks.values() if not self.settings.ignores(c.test)]

    async def _execute(self, check: Check) -> Result:
        """Run one check to a Result; never raises (cancellation excepted)."""
        async with self._slots:
            try:
                outcome = await run_script(
                    check.path, timeout=self.config.timeout, cwd=check.path.parent, env=self._env
                )
                parsed = parse_outcome(outcome, timeout=self.config.timeout)
                return make_result(check.test, parsed, outcome.duration_ms, time.time())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("running %s failed inside the agent", check.path.name)
                return Result.build(
                    check.test, Status.UNKNOWN, f"agent error: {exc!r}", ts=time.time()
                )

    def _start(self, check: Check, *, alone: bool) -> asyncio.Task[Result]:
        task = asyncio.create_task(self._execute(check), name=f"check {check.test}")
        self._running[check.test] = task
        if alone:
            self._alone.add(task)
        task.add_done_callback(lambda t: self._finished(check.test, t))
        return task

    def _finished(self, test: str, task: asyncio.Task[Result]) -> None:
        if self._running.get(test) is task:
            del self._running[test]
        alone = task in self._alone
        self._alone.discard(task)
        if task.cancelled():
            return
        if alone:
            self._emit_results([task.result()], time.time())
        if test in self._rerun:
            self._rerun.discard(test)
            self.run_test(test, why="changed while running")

    def run_test(self, test: str, *, why: str) -> bool:
        """Run one test now and publish its result on its own. False if there is none."""
        check = self.catalog.get(test)
        if check is None:
            return False
        if self.settings.ignores(test):
            log.info("%s not run (%s): it is ignored", test, why)
            return True
        if test in self._running:
            self._rerun.add(test)  # the running copy may be the old file: run again after
            return True
        log.debug("running %s (%s)", test, why)
        self._start(check, alone=True)
        return True

    async def run_round(self, *, why: str = "scheduled") -> None:
        """Start every non-ignored check not already running; publish one message with
        everything that finished within the round's patience."""
        round_ts = time.time()
        tasks: list[asyncio.Task[Result]] = []
        busy: list[str] = []
        for check in self._due_checks():
            if check.test in self._running:
                busy.append(check.test)
                continue
            tasks.append(self._start(check, alone=False))
        done: set[asyncio.Task[Result]] = set()
        if tasks:
            done, pending = await asyncio.wait(
                tasks, timeout=round_patience(self.settings.interval)
            )
            # Still running: reported on their own when they finish.
            self._alone.update(pending)
        results = [t.result() for t in tasks if t in done and not t.cancelled()]
        self._rounds += 1
        self._emit_results(results, round_ts)
        level = logging.INFO if self._rounds == 1 else logging.DEBUG
        log.log(
            level,
            "round %d (%s): %d result(s)%s%s",
            self._rounds,
            why,
            len(results),
            f", {len(tasks) - len(done)} still running" if len(done) < len(tasks) else "",
            f", busy from before: {', '.join(busy)}" if busy else "",
        )

    async def _round_loop(self) -> None:
        loop = asyncio.get_running_loop()
        schedule = self._schedule = Schedule(self.settings.interval, start=loop.time())
        while True:
            if await sleep_until(schedule.due, self._wake):
                continue  # the interval changed: the due time may have moved
            try:
                await self.run_round()
            except Exception:
                log.exception("a round failed inside the agent")
            skipped = schedule.skipped
            schedule.advance(loop.time())
            if schedule.skipped > skipped:
                log.warning(
                    "round overran its %d s interval; %d round(s) skipped",
                    self.settings.interval,
                    schedule.skipped - skipped,
                )

    def _spawn(self, coro: object, name: str) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %r", task.get_name(), task.exception())

    # ------------------------------------------------------------------ script changes

    async def _on_script_change(self, path: Path, exists: bool) -> None:
        if not is_candidate_name(path.name):
            return  # temp files of atomic writes, editor leftovers
        before = self.catalog
        self._refresh_catalog(publish=False)
        check = self.catalog.by_path(path)
        if exists and check is not None:
            known = before.by_path(path) is not None
            log.info("script %s %s: running it", path.name, "changed" if known else "added")
            self.run_test(check.test, why=f"{path.name} changed")
        elif not exists:
            gone = before.by_path(path)
            if gone is not None:
                log.info("script %s removed", path.name)
                replacement = self.catalog.get(gone.test)
                if replacement is not None:  # a shadowed local script runs again
                    self.run_test(replacement.test, why=f"{path.name} removed")
        if self._state_fingerprint() != self._state_fp:
            self._publish_state()

    # ------------------------------------------------------------------ network events

    def _on_connection(self, event: ConnectionEvent) -> None:
        if not event.connected:
            return
        self.outbox.poke()
        if not self._registered:
            self._register_now.set()
        if self._sync_failed:
            self._sync_now.set()

    def _on_message(self, message: Message) -> None:
        if message.channel != self.config.ignore_chan:
            return
        try:
            self._commands.put_nowait(message.payload)
        except asyncio.QueueFull:
            self._dropped_commands += 1
            if self._dropped_commands in (1, 100) or self._dropped_commands % 1000 == 0:
                log.warning("command flood: %d command(s) dropped", self._dropped_commands)

    async def _command_loop(self) -> None:
        while True:
            payload = await self._commands.get()
            try:
                await self.handle_command(payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handling a command failed")

    async def handle_command(self, payload: object) -> None:
        decision = decide(payload, self.id, self.settings)
        if isinstance(decision, Malformed):
            log.warning(
                "ignored a malformed command on %s: %s", self.config.ignore_chan, decision.reason
            )
            return
        if not isinstance(decision, Applied):
            return  # for another device
        log.info("command %s", decision.summary)
        effects = decision.effects
        if decision.settings != self.settings:
            self._set_settings(decision.settings, reschedule=effects.reschedule)
            self._remote_known = True  # ours is now newer than anything stored remotely
        if effects.persist:
            await self._persist()
        if effects.publish_state:
            self._publish_state()
        if effects.run_all:
            self._spawn(self.run_round(why=decision.command.kind), "command round")
        for test in effects.run_tests:
            if not self.run_test(test, why="run_now"):
                log.warning("run_now: no script for test %r", test)

    def _on_file(self, event: FileEvent) -> None:
        if event.channel != self.config.config_chan:
            return
        self._spawn(self._receive(RemoteFile.from_event(event)), f"file {event.file_name!r}")

    async def _receive(self, remote: RemoteFile) -> None:
        await self.files.on_event(remote)
        self._refresh_catalog()

    async def full_sync(self) -> None:
        try:
            await self.files.full_sync()
        except BusError as exc:
            if not self._sync_failed:
                log.warning("cannot list scripts on %s: %s", self.config.config_chan, exc)
            self._sync_failed = True
            return
        self._sync_failed = False
        self._refresh_catalog()

    async def _sync_loop(self) -> None:
        """List `config_chan` again every `sync_every` seconds (missed events, expired
        files re-sent by the dashboard), and soon after reconnecting if a sync failed."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.sync_every):
                    await self._sync_now.wait()
            self._sync_now.clear()
            await self.full_sync()
