"""End-to-end encryption: with `cipher_key`, the broker stores nothing readable.

A full round and a signed upload run through a hub with a data dir; then every byte the hub
wrote (SQLite database, its WAL, the file store) is scanned for distinctive markers of test
names, result output and script content, raw and base64-encoded. What the broker *does*
see (channel names, device ids, file names, App Context) is metadata by design, listed in
docs/SECURITY.md; the positive controls below prove the scan reads the right files.

A client with a different key gets the one clear error line and keeps working.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reflex_agent.daemon import Agent
from reflex_core.bus import Bus, BusSettings
from reflex_core.events import UndecryptableMessage, undecryptable_hint
from reflex_core.protocol import device_channel
from tests.agent.agent_harness import (
    FAST_BUS,
    OPERATOR,
    WAIT,
    Observer,
    agent_bus,
    has_test,
    make_config,
    result_of,
    running,
    upload,
    write_script,
)

pytestmark = pytest.mark.timeout(60)

CIPHER_KEY = "correct horse battery staple"
ME = "web1-test"

# Distinctive strings that must never reach the broker in the clear.
LOCAL_TEST = "zqxlocalsecretcheck"
LOCAL_OUTPUT = "ZQX-LOCAL-OUTPUT-7741"
LONG_OUTPUT = "ZQX-LONG-OUTPUT-2209"
SCRIPT_CONTENT = "ZQX-SCRIPT-BODY-5583"
NET_OUTPUT = "ZQX-NETWORK-OUTPUT-9902"
# The uploaded file's *name* is File Sharing metadata (visible, like a channel name), so its
# test name is not a marker; it doubles as a positive control of the scan.
UPLOAD_NAME = "uplnet.sh"
MARKERS = [LOCAL_TEST, LOCAL_OUTPUT, LONG_OUTPUT, SCRIPT_CONTENT, NET_OUTPUT]


def encodings(marker: str) -> list[bytes]:
    """The marker as raw bytes, and the parts of its base64 form that appear whatever its
    offset in a larger base64 text (a payload merely base64-encoded is not encrypted)."""
    raw = marker.encode()
    forms = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.append(encoded[4 : len(encoded) - 4])  # drop the edges the neighbours change
    return forms


def scan(data_dir: Path) -> dict[str, list[str]]:
    """marker -> files under `data_dir` holding it in any of its `encodings`."""
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files, f"nothing under {data_dir}"
    found: dict[str, list[str]] = {}
    for path in files:
        data = path.read_bytes()
        for marker in MARKERS:
            if any(form in data for form in encodings(marker)):
                found.setdefault(marker, []).append(str(path.relative_to(data_dir)))
    return found


def bus_settings(origin: str, user_id: str, cipher_key: str | None) -> BusSettings:
    return BusSettings(
        publish_key="pub-c-reflex-local",
        subscribe_key="sub-c-reflex-local",
        user_id=user_id,
        origin=origin,
        ssl=False,
        presence_heartbeat=False,
        cipher_key=cipher_key,
        **FAST_BUS,
    )


@contextlib.asynccontextmanager
async def reader(
    origin: str,
    cipher_key: str | None,
    on_undecryptable: Callable[[UndecryptableMessage], Any] | None = None,
) -> AsyncIterator[Observer]:
    """A dashboard-like reader of `device.<ME>` with its own cipher key."""
    bus = Bus(bus_settings(origin, f"reader-{cipher_key or 'none'}"[:60], cipher_key))
    await bus.start()
    observer = Observer(bus, ME)
    bus.add_listener(on_message=observer._on_message, on_undecryptable=on_undecryptable)
    await bus.subscribe([device_channel(ME)])
    async with asyncio.timeout(WAIT):
        await bus.wait_connected()
    try:
        yield observer
    finally:
        await bus.close()


async def round_and_upload(tmp_path: Path, hub: Any, cipher_key: str | None) -> None:
    """A full round, a signed upload that runs, a command and its answer; then stop the hub
    so that everything it keeps is on disk."""
    config = make_config(
        tmp_path, hub.origin, interval=3600, cipher_key=cipher_key, trusted_keys=(OPERATOR,)
    )
    local = f"# {SCRIPT_CONTENT} (local copy)\necho '{LOCAL_OUTPUT} | load=3;5;9'\n"
    write_script(config.scripts, f"{LOCAL_TEST}.sh", local + f"echo {LONG_OUTPUT}\n")
    uploaded = f"# {SCRIPT_CONTENT}\necho '{NET_OUTPUT} | up=1'\n".encode()
    net_test = UPLOAD_NAME.removesuffix(".sh")
    dashboard = Bus(bus_settings(hub.origin, "dashboard", cipher_key))
    await dashboard.start()
    try:
        async with reader(hub.origin, cipher_key) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
                assert [s.test for s in state.scripts] == [LOCAL_TEST]
                first = await observer.results(has_test(LOCAL_TEST))
                result = result_of(first, LOCAL_TEST)
                # The key holder reads everything in the clear.
                assert (result.output, result.long_output) == (LOCAL_OUTPUT, LONG_OUTPUT)

                await upload(dashboard, config.config_chan, UPLOAD_NAME, uploaded)
                ran = await observer.results(has_test(net_test))
                assert result_of(ran, net_test).output == NET_OUTPUT
                # A command round-trip (its answer is a `state` and a round).
                await dashboard.publish(
                    config.ignore_chan, {"v": 1, "kind": "refresh", "target": ME}
                )
                await observer.state()
                await observer.results(has_test(LOCAL_TEST))
    finally:
        await dashboard.close()
    assert (config.scripts / "received" / UPLOAD_NAME).read_bytes() == uploaded
    await hub.stop()  # writes pending history: everything is on disk now


async def test_the_broker_stores_nothing_readable(tmp_path: Path, hub_factory: Any) -> None:
    hub = await hub_factory()
    await round_and_upload(tmp_path, hub, CIPHER_KEY)

    assert scan(hub.data_dir) == {}

    # Positive controls: the scan did read the stored messages, file names and blobs.
    with contextlib.closing(sqlite3.connect(hub.data_dir / "hub.sqlite3")) as db:
        stored = db.execute(
            "SELECT count(*) FROM messages WHERE channel = ?", (device_channel(ME),)
        ).fetchone()[0]
        names = {row[0] for row in db.execute("SELECT name FROM files")}
    assert stored >= 4  # state, results, state, results
    assert names == {UPLOAD_NAME, f"{UPLOAD_NAME}.sig"}
    blobs = list((hub.data_dir / "files").iterdir())
    assert len(blobs) == 2 and all(b.stat().st_size > len(SCRIPT_CONTENT) for b in blobs)
    assert any(UPLOAD_NAME.encode() in p.read_bytes() for p in hub.data_dir.glob("hub.sqlite3*"))


async def test_without_a_cipher_key_the_scan_finds_everything(
    tmp_path: Path, hub_factory: Any
) -> None:
    """The control: the same traffic in the clear is found by the same scan, in the
    database and in the file store."""
    hub = await hub_factory()
    await round_and_upload(tmp_path, hub, None)
    found = scan(hub.data_dir)
    assert set(found) == set(MARKERS)
    assert any(path.startswith("files/") for path in found[SCRIPT_CONTENT])
    assert any(path.startswith("hub.sqlite3") for path in found[NET_OUTPUT])


async def test_a_different_key_is_one_clear_error_and_nothing_stops(
    tmp_path: Path, hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config = make_config(
        tmp_path, hub.origin, interval=3600, cipher_key=CIPHER_KEY, trusted_keys=(OPERATOR,)
    )
    write_script(config.scripts, "cpu.sh", "echo CPU OK\n")
    garbled: list[UndecryptableMessage] = []
    seen_garbled = asyncio.Event()

    def on_garbled(event: UndecryptableMessage) -> None:
        garbled.append(event)
        seen_garbled.set()

    wrong = Bus(bus_settings(hub.origin, "wrong-dashboard", "not the key"))
    await wrong.start()
    try:
        async with (
            reader(hub.origin, CIPHER_KEY) as right,
            reader(hub.origin, "another key", on_garbled) as mistaken,
            running(Agent(config, bus=agent_bus(config))),
        ):
            await right.results(has_test("cpu"))
            # The reader with the wrong key: one event with the one-sentence hint, no crash.
            async with asyncio.timeout(WAIT):
                await seen_garbled.wait()
            assert garbled[0].describe() == (
                f"messages on {device_channel(ME)} cannot be decrypted: "
                "is cipher_key the same everywhere?"
            )
            assert mistaken.messages == []  # garbage never reached protocol parsing
            assert mistaken.bus.connection.connected

            # The agent receives a command and a (signed) file it cannot decrypt...
            await wrong.publish(config.ignore_chan, {"v": 1, "kind": "refresh", "target": ME})
            await upload(wrong, config.config_chan, "wrongkey.sh", b"echo nope\n")
            # ...and still obeys the dashboard that has the right key.
            async with Bus(bus_settings(hub.origin, "dashboard", CIPHER_KEY)) as dashboard:
                await dashboard.publish(
                    config.ignore_chan,
                    {"v": 1, "kind": "set_interval", "target": ME, "interval": 77},
                )
                await right.state(lambda s: s.interval == 77)
    finally:
        await wrong.close()

    assert not (config.scripts / "received" / "wrongkey.sh").exists()
    hints = [r for r in caplog.records if "cannot be decrypted" in r.getMessage()]
    by_channel = {r.getMessage().split(" cannot")[0] for r in hints}
    assert {f"messages on {config.ignore_chan}", f"messages on {config.config_chan}"} <= by_channel
    for record in hints:
        message = record.getMessage()
        assert "\n" not in message and record.exc_info is None  # one line, no traceback
        channel = message.removeprefix("messages on ").split(" ")[0]
        assert message.startswith(undecryptable_hint(channel))
    # Once per channel, not once per message.
    assert len([r for r in hints if f"on {config.ignore_chan} " in r.getMessage()]) == 1
