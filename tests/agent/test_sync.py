"""Scripts from the network: the one path to disk, its refusals, and listing sync on a real hub.

Uploads are signed by the operator key the agent trusts (signature refusals themselves are
covered in test_signed_scripts.py); these tests are about names, sizes, paging and writes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from reflex_agent.sync import (
    FileSync,
    RemoteFile,
    Signatures,
    accept_remote_file,
    newest_per_name,
    remote_name_problem,
)
from reflex_core.bus import Bus, BusSettings
from reflex_core.config import LOCAL_SUB_KEY
from reflex_core.errors import BusError
from reflex_core.filenames import MAX_SCRIPT_BYTES
from reflex_core.signing import TrustPolicy, sign_script, signature_file_name
from reflex_hub import HubHandle
from reflex_hub.store import FileRecord

from .agent_harness import OPERATOR, OPERATOR_KEY, upload

#: The agent's policy in these tests: the test operator's key is trusted.
POLICY = TrustPolicy(trusted_keys=(OPERATOR,))


def signed(name: str, data: bytes, version: int = 1000) -> Signatures:
    """A signature source holding a valid operator signature of `data` as `name`."""
    document = sign_script(OPERATOR_KEY, name, data, version).to_wire()

    async def signatures() -> list[object]:
        return [document]

    return signatures


pytestmark = pytest.mark.timeout(60)

#: Every hostile name the issue lists, with the start of the reason it must get.
HOSTILE = [
    ("../x.py", "bad name: contains a path separator"),
    ("/etc/cron.d/x.sh", "bad name: contains a path separator"),
    ("a/b.py", "bad name: contains a path separator"),
    ("a\\b.py", "bad name: contains a path separator"),
    ("x\x00y.py", "bad name: contains NUL"),
    ("é" * 150 + ".py", "bad name: longer than 255 bytes"),
    (".hidden.py", "bad name: hidden file"),
    ("x.exe", "bad name: only .py and .sh"),
    ("..py", "bad name: contains '..'"),
    ("x.py.", "bad name: only .py and .sh"),
    ("a,b.py", "bad name:"),
    ("tab\there.sh", "bad name: contains control characters"),
    (".py", "bad name: hidden file"),
    ("", "bad name: empty"),
]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def fetcher(data: bytes, calls: list[RemoteFile]) -> Callable[[RemoteFile], Awaitable[bytes]]:
    async def fetch(remote: RemoteFile) -> bytes:
        calls.append(remote)
        return data

    return fetch


@pytest.mark.parametrize(("name", "reason"), HOSTILE)
async def test_hostile_names_are_refused_before_download(
    tmp_path: Path, name: str, reason: str
) -> None:
    dest = tmp_path / "scripts" / "received"
    dest.mkdir(parents=True)
    before = tree(tmp_path)
    calls: list[RemoteFile] = []
    outcome = await accept_remote_file(
        RemoteFile("id1", name, size=10),
        fetcher(b"echo pwned\n", calls),
        dest,
        policy=POLICY,
        signatures=signed(name, b"echo pwned\n"),  # even signed: the name alone refuses it
    )
    assert outcome.rejection is not None and outcome.rejection.reason.startswith(reason)
    assert outcome.rejection.file == name  # reported as received
    assert not outcome.accepted and calls == []
    assert tree(tmp_path) == before  # nothing written anywhere
    assert remote_name_problem(name) is not None


@pytest.mark.parametrize("name", ["cpu.py", "Disk.sh", "my-check_2.py", "ü.sh", "a.b.sh"])
def test_good_names(name: str) -> None:
    assert remote_name_problem(name) is None


async def test_accept_writes_atomically_and_skips_identical(tmp_path: Path) -> None:
    dest = tmp_path / "received"
    calls: list[RemoteFile] = []
    data = b"#!/bin/sh\necho 1\n"
    first = await accept_remote_file(
        RemoteFile("a", "net.sh", 17),
        fetcher(data, calls),
        dest,
        policy=POLICY,
        signatures=signed("net.sh", data),
    )
    assert first.accepted and first.written and first.rejection is None
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    path = dest / "net.sh"
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # never executable
    assert sorted(os.listdir(dest)) == ["net.sh"]  # no temp file left behind
    mtime = path.stat().st_mtime_ns

    again = await accept_remote_file(
        RemoteFile("b", "net.sh"),
        fetcher(data, calls),
        dest,
        policy=POLICY,
        signatures=signed("net.sh", data, 1001),
    )
    assert again.accepted and not again.written
    assert path.stat().st_mtime_ns == mtime  # untouched: the watcher sees nothing

    changed = await accept_remote_file(
        RemoteFile("c", "net.sh"),
        fetcher(b"echo 2\n", calls),
        dest,
        policy=POLICY,
        signatures=signed("net.sh", b"echo 2\n", 1002),
    )
    assert changed.written and path.read_bytes() == b"echo 2\n"


async def test_too_large_by_listing_or_by_download(tmp_path: Path) -> None:
    dest = tmp_path / "received"
    calls: list[RemoteFile] = []
    listed = await accept_remote_file(
        RemoteFile("a", "big.sh", size=6 * 1024 * 1024),
        fetcher(b"x", calls),
        dest,
        policy=POLICY,
        signatures=signed("big.sh", b"x"),
    )
    assert listed.rejection is not None and calls == []
    assert listed.rejection.reason == f"too large: {6 * 1024 * 1024} bytes (limit 5242880)"
    huge = b"x" * (MAX_SCRIPT_BYTES + 1)
    lied = await accept_remote_file(
        RemoteFile("b", "big.sh", size=10),
        fetcher(huge, calls),
        dest,
        policy=POLICY,
        signatures=signed("big.sh", huge),
    )
    assert lied.rejection is not None and lied.rejection.reason.startswith("too large:")
    assert not dest.exists() or os.listdir(dest) == []


async def test_download_failure_is_an_error_not_a_refusal(tmp_path: Path) -> None:
    async def broken(remote: RemoteFile) -> bytes:
        raise BusError("download_file", "HTTP 404: File not found", status_code=404)

    outcome = await accept_remote_file(
        RemoteFile("a", "x.sh"), broken, tmp_path, policy=POLICY, signatures=signed("x.sh", b"")
    )
    assert outcome.error is not None and "404" in outcome.error
    assert outcome.rejection is None and not outcome.accepted


@pytest.mark.parametrize(
    ("files", "winners"),
    [
        ([RemoteFile("1", "a.sh", created="2024-01-01T00:00:01Z")], ["1"]),
        (
            [
                RemoteFile("2", "a.sh", created="2024-01-01T00:00:02Z"),
                RemoteFile("1", "a.sh", created="2024-01-01T00:00:01Z"),
                RemoteFile("3", "b.sh", created="2024-01-01T00:00:00Z"),
            ],
            ["2", "3"],
        ),
        (  # same second: the file message's timetoken decides
            [
                RemoteFile("9", "a.sh", created="2024-01-01T00:00:01Z", timetoken=20),
                RemoteFile("1", "a.sh", created="2024-01-01T00:00:01Z", timetoken=10),
            ],
            ["9"],
        ),
        (  # no timetokens either: the one listed last
            [
                RemoteFile("1", "a.sh", created="2024-01-01T00:00:01Z"),
                RemoteFile("0", "a.sh", created="2024-01-01T00:00:01Z"),
            ],
            ["0"],
        ),
    ],
)
def test_newest_upload_per_name_wins(files: list[RemoteFile], winners: list[str]) -> None:
    assert [f.file_id for f in newest_per_name(files)] == winners


# --------------------------------------------------------------------------- real hub


@pytest.fixture
async def bus(hub: HubHandle) -> AsyncIterator[Bus]:
    bus = Bus(
        BusSettings(
            publish_key="pub-c-reflex-local",
            subscribe_key=LOCAL_SUB_KEY,
            user_id="dashboard",
            origin=hub.origin,
            ssl=False,
            request_timeout=5,
        )
    )
    await bus.start()
    yield bus
    await bus.close()


async def inject(hub: HubHandle, name: str, data: bytes, *, size: int | None = None) -> str:
    """Put a file on `config` that a well-behaved client could not upload (hostile name,
    over 5 MiB): the hub (like PubNub) refuses those, but an agent must not trust that."""
    file_id = str(uuid.uuid4())
    await hub.core.blobs.put(file_id, data)
    hub.core.store.add_file(
        FileRecord(
            sub_key=LOCAL_SUB_KEY,
            channel="config",
            id=file_id,
            name=name,
            size=len(data) if size is None else size,
            created="2024-01-01T00:00:00Z",
        )
    )
    return file_id


async def test_full_sync_lists_all_pages_newest_wins_and_refuses(
    tmp_path: Path, hub: HubHandle, bus: Bus
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    dest = scripts / "received"
    for index in range(105):  # with their sidecars, more than two pages of 100
        # Put in place directly (quicker than 210 uploads); listing and downloads are real.
        name, data = f"c{index:03}.sh", f"echo {index}\n".encode()
        await inject(hub, name, data)
        await inject(
            hub, signature_file_name(name), sign_script(OPERATOR_KEY, name, data, 1).to_bytes()
        )
    await upload(bus, "config", "dup.sh", b"echo old\n")
    await upload(bus, "config", "dup.sh", b"echo new\n")  # usually within the same second
    await upload(bus, "config", ".hidden.py", b"print(1)\n")
    await upload(bus, "config", "a\\b.py", b"print(1)\n")
    for name, _ in HOSTILE[:3]:
        await inject(hub, name, b"echo pwned\n")
    await inject(hub, "huge.sh", b"x" * 10, size=6 * 1024 * 1024)
    # Lies about its size, and carries a signature, so it is downloaded and then measured.
    liar = b"x" * (MAX_SCRIPT_BYTES + 1)
    await inject(hub, "liar.sh", liar, size=10)
    liar_sig = sign_script(OPERATOR_KEY, "liar.sh", liar, 1).to_bytes()
    await inject(hub, signature_file_name("liar.sh"), liar_sig)
    outside = tree(tmp_path)

    sync = FileSync(bus, "config", dest, policy=POLICY)
    assert await sync.full_sync()
    assert (dest / "dup.sh").read_bytes() == b"echo new\n"
    assert len(list(dest.glob("c*.sh"))) == 105
    refused = {r.file: r.reason for r in sync.rejected}
    assert set(refused) == {
        ".hidden.py",
        "a\\b.py",
        "../x.py",
        "/etc/cron.d/x.sh",
        "a/b.py",
        "huge.sh",
        "liar.sh",
    }
    assert refused["huge.sh"].startswith("too large")
    assert refused["liar.sh"].startswith("too large")
    new = tree(tmp_path) - outside
    assert all(p.startswith("scripts/received") for p in new)
    assert len(new) == 106 + 1  # 106 scripts + the received dir itself

    # A second sync downloads nothing (same uploads, same bytes) and changes nothing.
    file_requests = hub.stats.get("files", 0)
    assert not await sync.full_sync()
    assert hub.stats.get("files", 0) - file_requests == 3  # three list pages, no download

    # A local edit of a received file is put right at the next sync.
    (dest / "dup.sh").write_bytes(b"tampered\n")
    assert await sync.full_sync()
    assert (dest / "dup.sh").read_bytes() == b"echo new\n"


async def test_live_event_path_and_stale_events(tmp_path: Path, hub: HubHandle, bus: Bus) -> None:
    dest = tmp_path / "received"
    sync = FileSync(bus, "config", dest, policy=POLICY)
    old = await upload(bus, "config", "x.sh", b"echo 1\n")
    new = await upload(bus, "config", "x.sh", b"echo 2\n")
    # Events built by hand carry no file message: the agent finds the sidecar instead.
    assert await sync.on_event(RemoteFile(new.id, "x.sh", timetoken=new.timetoken))
    assert not await sync.on_event(RemoteFile(new.id, "x.sh", timetoken=new.timetoken))
    # An older upload announced late (a catch-up after an outage) does not roll back.
    assert not await sync.on_event(RemoteFile(old.id, "x.sh", timetoken=old.timetoken))
    assert (dest / "x.sh").read_bytes() == b"echo 2\n"
    # A hostile live event is refused without a download, and reported.
    assert await sync.on_event(RemoteFile("nope", "../../x.sh", timetoken=new.timetoken + 1))
    assert [r.file for r in sync.rejected] == ["../../x.sh"]
