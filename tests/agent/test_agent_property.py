"""Property tests: whatever arrives on `ignore_chan` (or as a file name, or as a signature),
the agent neither raises nor misbehaves, and bad input costs one logged warning.

Anyone holding the publish key can send anything, so these generate hostile JSON-ish input:
v1 and legacy command shapes with wrong types, huge lists, deep nesting, odd numbers and odd
unicode (surrogates, bidi overrides, ANSI escapes, Rich markup, NUL). No network is used per
example: the daemon's handler runs against an in-memory bus and stubbed script runs.

By default each property runs `DEFAULT_EXAMPLES`; under the `ci-full` profile
(`HYPOTHESIS_PROFILE=ci-full pytest -m property`) each runs 10,000.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflex_agent.commands import AgentSettings, Applied, Malformed, NotForUs, decide
from reflex_agent.daemon import COMMAND_QUEUE_LIMIT, Agent
from reflex_agent.registry import Check
from reflex_agent.state_store import LocalState, StateStore
from reflex_agent.sync import RemoteFile, accept_remote_file, remote_name_problem
from reflex_core.config import Config
from reflex_core.events import Message, UuidMetadata
from reflex_core.protocol import (
    MAX_IGNORE_NAMES,
    MAX_INTERVAL,
    MIN_INTERVAL,
    Result,
    Status,
    is_test_name,
    message_budget,
    parse_device_message,
    wire_size,
)
from reflex_core.signing import (
    SignatureProblem,
    TrustPolicy,
    check_upload,
    sha256_hex,
    sign_script,
)

from .agent_harness import OPERATOR, OPERATOR_KEY, write_script

DEFAULT_EXAMPLES = 300
EXAMPLES = max(DEFAULT_EXAMPLES, settings.default.max_examples)
# The suite-wide 120 s timeout fits the default count; the full count needs minutes per test.
pytestmark = [pytest.mark.property, pytest.mark.timeout(120 if EXAMPLES <= 1000 else 1800)]
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ME = "web1-test"
NAME = "Web1.Test"

# --------------------------------------------------------------------------- strategies

WEIRD = [
    "",
    " ",
    "*",
    ME,
    ME.upper(),
    NAME,
    "cpu",
    "CPU",
    "İ",  # lowercases to two code points
    "ß",
    "\u202eevil",  # right-to-left override
    "\x1b[2J\x1b[31mred",  # ANSI: clear screen, colour
    "[bold red]markup[/]",  # Rich markup
    "a\x00b",
    "\ud800",  # lone surrogate (json.loads produces these from "\\ud800")
    "\ufeffbom",
    "e\u0301\u0301\u0301",  # combining marks
    "𝕏😀",
    "a,b",
    "../x",
    ".hidden",
    "x" * 65,
    "x" * 10_000,
]
text = st.one_of(
    st.sampled_from(WEIRD),
    st.text(st.characters(blacklist_categories=()), max_size=40),  # surrogates included
    st.text(max_size=12),
)
numbers = st.one_of(
    st.sampled_from(
        [0, -1, 1, MIN_INTERVAL, MAX_INTERVAL, MAX_INTERVAL + 1, 10**9, 2**63, -(2**63)]
    ),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_ish = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=20,
)


def _nest(depth: int, leaf: object, as_dict: bool) -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


deep = st.builds(_nest, st.integers(50, 3000), scalars, st.booleans())
names = st.one_of(text, st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True))
# Built from a few drawn values rather than drawn item by item: cheap to generate, so the
# 10,000-example run stays in CI's budget.
huge_lists = st.one_of(
    st.builds(lambda n, item: [item] * n, st.integers(0, 20_000), names | json_ish),
    st.builds(lambda n, stem: [f"{stem}{i}" for i in range(n)], st.integers(240, 300), names),
    st.builds(lambda n: [f"t{i}" for i in range(n)], st.integers(200, 12_000)),
)
csv = st.builds(lambda items: ",".join(items), st.lists(names, max_size=300))
field = st.one_of(json_ish, deep, huge_lists, csv, names)
targets = st.one_of(st.sampled_from([ME, "*", NAME, "web2", ""]), field)
v1_commands = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.sampled_from([1, 1.0, True, "1", 2, 0, None]), numbers),
        "kind": st.one_of(
            st.sampled_from(["set_ignore", "set_interval", "refresh", "run_now"]), text
        ),
        "target": targets,
        "ignore": field,
        "interval": st.one_of(numbers, field),
        "test": field,
        "extra": json_ish,
    },
)
legacy_commands = st.fixed_dictionaries(
    {"host": targets},
    optional={"ignore": st.one_of(csv, field), "command": st.one_of(st.just("refresh"), field)},
)
# Well-formed commands for us, so the handler's effects (persist, rounds, runs) get exercised
# as often as the refusals.
valid_commands = st.one_of(
    st.builds(
        lambda target, ignore: {"v": 1, "kind": "set_ignore", "target": target, "ignore": ignore},
        st.sampled_from([ME, "*"]),
        st.lists(st.sampled_from(["cpu", "disk", "CPU", "load"]), max_size=5),
    ),
    st.builds(
        lambda target, interval: {
            "v": 1,
            "kind": "set_interval",
            "target": target,
            "interval": interval,
        },
        st.sampled_from([ME, "*"]),
        st.integers(MIN_INTERVAL, MAX_INTERVAL),
    ),
    st.builds(
        lambda test: {"v": 1, "kind": "run_now", "target": ME, **({"test": test} if test else {})},
        st.sampled_from([None, "cpu", "disk", "nope"]),
    ),
    st.just({"v": 1, "kind": "refresh", "target": "*"}),
    st.just({"host": NAME, "command": "refresh"}),
    st.builds(lambda csv_: {"host": ME, "ignore": csv_}, st.sampled_from(["cpu", "", "Cpu, disk"])),
)
payloads = st.one_of(json_ish, deep, huge_lists, v1_commands, legacy_commands, valid_commands)


# --------------------------------------------------------------------------- pure decision

BEFORE = AgentSettings(("swap",), 10)


@PROPERTY
@given(payload=payloads)
def test_decide_never_raises_and_explains_in_one_line(payload: object) -> None:
    decision = decide(payload, ME, BEFORE)
    assert isinstance(decision, Applied | NotForUs | Malformed)
    if isinstance(decision, Malformed):
        assert decision.reason and "\n" not in decision.reason and len(decision.reason) <= 600
    if isinstance(decision, Applied):
        settings_ = decision.settings
        assert MIN_INTERVAL <= settings_.interval <= MAX_INTERVAL
        assert len(settings_.ignore) <= MAX_IGNORE_NAMES
        assert all(is_test_name(n) for n in settings_.ignore)
        assert list(settings_.ignore) == sorted(set(settings_.ignore))
        assert "\n" not in decision.summary


# --------------------------------------------------------------------------- the daemon's handler


class MemoryStore(StateStore):
    """The state file, in memory: thousands of examples must not mean thousands of fsyncs."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent/state.json"))
        self.state = LocalState()

    def load(self) -> LocalState:
        return LocalState(
            list(self.state.ignored) if self.state.ignored is not None else None,
            self.state.interval,
            dict(self.state.versions),
            dict(self.state.received),
        )

    def save(self, state: LocalState) -> None:
        self.state = state


class MemoryBus:
    """What the handler touches of the bus: App Context reads and writes."""

    def __init__(self) -> None:
        self.custom: dict[str, Any] | None = None
        self.writes = 0

    async def get_uuid_metadata(self, uuid: str) -> UuidMetadata | None:
        return UuidMetadata(uuid, name=NAME, custom=self.custom)

    async def set_uuid_metadata(
        self, uuid: str, *, name: str | None = None, custom: dict[str, Any] | None = None
    ) -> None:
        self.custom = custom
        self.writes += 1


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Harness:
    """One agent, one event loop, reused across examples (each example drains its work)."""

    def __init__(self, tmp_path: Path) -> None:
        scripts = tmp_path / "scripts"
        scripts.mkdir()
        for test in ("cpu", "disk", "load"):
            write_script(scripts, f"{test}.sh", f"echo {test}\n")
        config = Config(scripts=scripts, state_dir=tmp_path / "state", name=NAME, interval=10)
        self.bus = MemoryBus()
        self.loop = asyncio.new_event_loop()
        self.agent = self.loop.run_until_complete(self._make(config))
        self.budget = message_budget(False)
        self.published: list[object] = []
        self.agent.outbox.put = self._check_and_keep  # type: ignore[method-assign]
        self.warnings = Warnings()
        logging.getLogger("reflex_agent").addHandler(self.warnings)

    async def _make(self, config: Config) -> Agent:
        agent = Agent(config, bus=self.bus)  # type: ignore[arg-type]
        agent.store = MemoryStore()
        agent._refresh_catalog(publish=False)

        async def instant(check: Check) -> Result:  # no processes per example
            return Result.build(check.test, Status.OK, f"{check.test} ok", ts=time.time())

        agent._execute = instant  # type: ignore[method-assign]
        return agent

    def _check_and_keep(self, message: Any) -> None:
        """Everything the agent would publish must be valid and within the size cap."""
        wire = message.to_wire()
        parse_device_message(wire)
        assert wire_size(message) <= self.budget
        self.published.append(message.kind)

    def handle(self, payload: object) -> None:
        self.loop.run_until_complete(self._handle(payload))

    async def _handle(self, payload: object) -> None:
        await self.agent.handle_command(payload)
        # Let spawned rounds and runs finish, so the next example starts from rest.
        while self.agent._background or self.agent._running:
            pending = [*self.agent._background, *self.agent._running.values()]
            await asyncio.wait(pending, timeout=5)

    def close(self) -> None:
        logging.getLogger("reflex_agent").removeHandler(self.warnings)
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    made = Harness(tmp_path_factory.mktemp("property-agent"))
    yield made
    made.close()


@PROPERTY
@given(payload=payloads)
def test_daemon_handler_survives_anything_and_logs_bad_input(
    harness: Harness, payload: object
) -> None:
    harness.warnings.records.clear()
    harness.published.clear()
    writes = harness.bus.writes
    expected = decide(payload, ME, harness.agent.settings)

    harness.handle(payload)  # must not raise

    settings_ = harness.agent.settings
    assert MIN_INTERVAL <= settings_.interval <= MAX_INTERVAL
    assert all(is_test_name(n) for n in settings_.ignore)
    messages = [r.getMessage() for r in harness.warnings.records]
    if isinstance(expected, Malformed):
        # Exactly one warning line, naming the channel; nothing else happened.
        assert len(messages) == 1 and messages[0].startswith("ignored a malformed command on ")
        assert "\n" not in messages[0]
        assert harness.published == [] and harness.bus.writes == writes
    elif isinstance(expected, NotForUs):
        assert messages == [] and harness.published == [] and harness.bus.writes == writes
    else:
        assert settings_ == expected.settings
        if expected.effects.persist:
            assert harness.bus.writes == writes + 1
            assert harness.agent.store.load().ignored == list(settings_.ignore)
        if expected.effects.publish_state:
            assert "state" in harness.published


def test_a_command_flood_is_bounded_and_never_fatal(harness: Harness) -> None:
    """More garbage than the queue holds: the excess is dropped with a warning, the rest is
    handled one by one (a handler that blows up does not stop the loop), and the agent still
    obeys a good command afterwards."""
    agent = harness.agent
    harness.warnings.records.clear()
    handled = 0
    all_handled = asyncio.Event()
    original = agent.handle_command

    async def counting(payload: object) -> None:
        nonlocal handled
        handled += 1
        if handled == COMMAND_QUEUE_LIMIT:
            all_handled.set()
        if payload == {"v": 1, "kind": "boom"}:
            raise RuntimeError("a bug in a handler")
        await original(payload)

    async def flood() -> None:
        agent._on_message(Message("ignore", None, "x", 0, {"v": 1, "kind": "boom"}))
        for index in range(COMMAND_QUEUE_LIMIT + 499):
            agent._on_message(Message("ignore", None, "x", index, {"v": 1, "kind": index}))
        agent._on_message(Message("elsewhere", None, "x", 0, {"ignored": "other channel"}))
        assert agent._commands.qsize() == COMMAND_QUEUE_LIMIT
        loop = asyncio.create_task(agent._command_loop())
        async with asyncio.timeout(30):
            await all_handled.wait()
        await harness._handle({"v": 1, "kind": "set_interval", "target": ME, "interval": 77})
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    agent.handle_command = counting  # type: ignore[method-assign]
    try:
        harness.loop.run_until_complete(flood())
    finally:
        agent.handle_command = original  # type: ignore[method-assign]
    messages = [r.getMessage() for r in harness.warnings.records]
    assert "command flood: 1 command(s) dropped" in messages
    assert "command flood: 100 command(s) dropped" in messages
    assert sum(m.startswith("ignored a malformed command") for m in messages) == (
        COMMAND_QUEUE_LIMIT - 1
    )
    assert any(r.getMessage() == "handling a command failed" for r in harness.warnings.records)
    assert agent.settings.interval == 77


# --------------------------------------------------------------------------- files and signatures


@PROPERTY
@given(name=st.one_of(text, st.sampled_from(["x.py", "ok.sh", "../x.sh", "a/b.py", "x.exe"])))
def test_no_name_writes_outside_the_received_dir(names_root: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(dir=names_root) as fresh:
        check_one_name(Path(fresh), name)


@pytest.fixture(scope="module")
def names_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("names")


def check_one_name(root: Path, name: str) -> None:
    dest = root / "scripts" / "received"
    dest.mkdir(parents=True)
    data = b"echo hi\n"
    try:
        document = sign_script(OPERATOR_KEY, name, data, 1).to_wire()
    except UnicodeEncodeError:  # a lone surrogate cannot even be signed; sign another name
        document = sign_script(OPERATOR_KEY, "other.sh", data, 1).to_wire()

    async def fetch(remote: RemoteFile) -> bytes:
        return data

    async def signatures() -> list[object]:
        return [document]

    outcome = asyncio.run(
        accept_remote_file(
            RemoteFile("id", name),
            fetch,
            dest,
            policy=TrustPolicy((OPERATOR,)),
            signatures=signatures,
        )
    )
    written = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    if remote_name_problem(name) is None:
        assert outcome.accepted and written == [Path("scripts/received") / name]
    else:
        assert outcome.rejection is not None and written == []
        assert outcome.rejection.reason.startswith("bad name:")


DATA = b"echo\n"
# Near-misses of a real signature document (right name, right digest, the trusted key, a
# 64-byte "signature") as well as plain garbage: the crypto check itself gets exercised.
signature_like = st.one_of(
    scalars,
    st.binary(max_size=64),
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 1, 2, True]), "kind": st.just("signature")},
        optional={
            "file": st.sampled_from(["x.sh", "y.sh", "X.sh", "", "x.sh\x00"]),
            "sha256": st.sampled_from([sha256_hex(DATA), sha256_hex(b""), "", "ZZ"]),
            "version": numbers,
            "key": st.sampled_from([OPERATOR, "ed25519:" + "A" * 43 + "=", "ed25519:", "x"]),
            "sig": st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode())
            | scalars,
        },
    ),
)


@PROPERTY
@given(candidates=st.lists(signature_like, max_size=3), floor=st.none() | st.integers())
def test_check_upload_refuses_garbage_with_a_category(
    candidates: list[object], floor: int | None
) -> None:
    try:
        check_upload(candidates, "x.sh", DATA, TrustPolicy((OPERATOR,)), floor)
    except SignatureProblem as problem:
        assert str(problem).partition(":")[0] in {"unsigned", "bad signature", "untrusted key"}
    else:  # pragma: no cover - forging Ed25519 by chance would be news
        raise AssertionError("garbage verified")
