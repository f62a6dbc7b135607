"""Only operator-signed scripts from the network run: running agents on a real hub refuse
unsigned, forged, foreign-key and rolled-back uploads, report each in `state.rejected`, and
never write them; start-up sync verifies through the ``.sig`` sidecars; the rollback floor
survives a restart; files in ``received/`` nobody vouches for are removed.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reflex_agent.daemon import Agent
from reflex_agent.state_store import StateStore
from reflex_agent.sync import FileSync, ReceivedBook, RemoteFile
from reflex_core.protocol import Rejection, StateMessage
from reflex_core.signing import (
    ScriptSignature,
    TrustPolicy,
    public_key_text,
    send_signed,
    sign_script,
    sign_upload,
    signature_file_name,
)
from reflex_hub import HubHandle
from reflex_hub.store import FileRecord

from .agent_harness import (
    OPERATOR,
    OPERATOR_KEY,
    agent_bus,
    has_test,
    make_config,
    observing,
    result_of,
    running,
    upload,
)
from .test_sync import HOSTILE, tree

pytestmark = pytest.mark.timeout(60)

ATTACKER_KEY = Ed25519PrivateKey.generate()
CHAN = "config"


def reasons(state: StateMessage) -> dict[str, str]:
    return {r.file: r.reason for r in state.rejected}


def refused(*names: str):  # type: ignore[no-untyped-def]
    """Match a `state` that reports every one of `names` as rejected."""
    return lambda s: set(names) <= set(reasons(s))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def outputs(test: str, text: str):  # type: ignore[no-untyped-def]
    return lambda m: has_test(test)(m) and result_of(m, test).output == text


async def test_running_agent_refuses_unsigned_forged_untrusted_and_rollback(
    tmp_path: Path, hub: HubHandle
) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    received = config.scripts / "received"
    before = tree(tmp_path)
    v1 = sign_upload(OPERATOR_KEY, "roll.sh", b"echo v1\n", version=1000)
    v2 = sign_upload(OPERATOR_KEY, "roll.sh", b"echo v2\n", version=2000)
    async with agent_bus(config, user_id="dashboard") as dashboard:
        async with observing(hub.origin, config.device_id) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                await observer.state()

                # Properly signed: lands and runs.
                await upload(dashboard, CHAN, "good.sh", b"echo GOOD\n")
                await observer.results(outputs("good", "GOOD"))

                # Unsigned: no file message, no sidecar.
                await dashboard.send_file(CHAN, "unsigned.sh", b"echo UNSIGNED\n")
                # Forged: claims the operator key, but the signature is the attacker's.
                forged_data = b"echo FORGED\n"
                real = sign_script(ATTACKER_KEY, "forged.sh", forged_data, 5000)
                claim = ScriptSignature(real.file, real.sha256, real.version, OPERATOR, real.sig)
                await dashboard.send_file(CHAN, "forged.sh", forged_data, message=claim.to_wire())
                # Signed for other bytes: the signature is genuine, the content is not.
                swapped = sign_script(OPERATOR_KEY, "swapped.sh", b"echo honest\n", 5000)
                await dashboard.send_file(
                    CHAN, "swapped.sh", b"echo SWAPPED\n", message=swapped.to_wire()
                )
                # Validly signed, by a key this agent does not trust.
                await upload(dashboard, CHAN, "foreign.sh", b"echo FOREIGN\n", key=ATTACKER_KEY)
                # Rollback: v2 replaces v1, then v1 is replayed as a new upload.
                await send_signed(dashboard, CHAN, v1)
                await observer.results(outputs("roll", "v1"))
                await send_signed(dashboard, CHAN, v2)
                await observer.results(outputs("roll", "v2"))
                await send_signed(dashboard, CHAN, v1)

                names = ("unsigned.sh", "forged.sh", "swapped.sh", "foreign.sh", "roll.sh")
                state = await observer.state(refused(*names))
    got = reasons(state)
    assert got["unsigned.sh"] == "unsigned: no operator signature"
    assert got["forged.sh"] == "bad signature: signature does not verify"
    assert got["swapped.sh"] == "bad signature: file content does not match"
    assert got["foreign.sh"] == f"untrusted key: {public_key_text(ATTACKER_KEY.public_key())} " + (
        "is not in trusted_keys"
    )
    assert got["roll.sh"] == "rollback: version 1000 is older than the accepted version 2000"
    # What runs is exactly the two good scripts, the rolled-back name still at v2.
    assert {(s.test, s.file, s.sha256) for s in state.scripts} == {
        ("good", "received/good.sh", sha(b"echo GOOD\n")),
        ("roll", "received/roll.sh", sha(b"echo v2\n")),
    }
    assert sorted(p.name for p in received.iterdir()) == ["good.sh", "roll.sh"]
    assert (received / "roll.sh").read_bytes() == b"echo v2\n"
    created = tree(tmp_path) - before
    assert created == {
        "scripts/received",
        "scripts/received/good.sh",
        "scripts/received/roll.sh",
        f"state/{config.device_id}.json",
    }
    # Nothing any refused script would have printed ever ran.
    outputs_seen = {r.output for m in observer.messages if hasattr(m, "results") for r in m.results}
    assert outputs_seen <= {"GOOD", "v1", "v2"}


async def test_startup_sync_verifies_sidecars_and_rollback_survives_restart(
    tmp_path: Path, hub: HubHandle
) -> None:
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    v1 = sign_upload(OPERATOR_KEY, "early.sh", b"echo early 1\n", version=1000)
    v2 = sign_upload(OPERATOR_KEY, "early.sh", b"echo early 2\n", version=2000)
    async with agent_bus(config, user_id="dashboard") as dashboard:
        # Everything is on the channel before the agent starts: only the listing (and the
        # sidecars) can tell good from bad.
        await send_signed(dashboard, CHAN, v1)
        await dashboard.send_file(CHAN, "plain.sh", b"echo plain\n")
        await upload(dashboard, CHAN, "evil.sh", b"echo evil\n", key=ATTACKER_KEY)
        # A genuine sidecar for other bytes than the file.
        await dashboard.send_file(
            CHAN,
            signature_file_name("forged.sh"),
            sign_script(OPERATOR_KEY, "forged.sh", b"echo other\n", 1).to_bytes(),
        )
        await dashboard.send_file(CHAN, "forged.sh", b"echo forged\n")
        # A hostile sidecar that claims the right bytes under a foreign key must not shadow
        # the operator's own (the agent tries every sidecar of the name).
        await dashboard.send_file(
            CHAN,
            signature_file_name("early.sh"),
            sign_script(ATTACKER_KEY, "early.sh", b"echo early 1\n", 9999).to_bytes(),
        )
        async with observing(hub.origin, config.device_id) as observer:
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
                assert [(s.test, s.sha256) for s in state.scripts] == [
                    ("early", sha(b"echo early 1\n"))
                ]
                assert reasons(state) == {
                    "plain.sh": "unsigned: no operator signature",
                    "evil.sh": f"untrusted key: {public_key_text(ATTACKER_KEY.public_key())}"
                    " is not in trusted_keys",
                    "forged.sh": "bad signature: file content does not match",
                }
                await observer.results(outputs("early", "early 1"))
                await send_signed(dashboard, CHAN, v2)
                await observer.results(outputs("early", "early 2"))

            # While the agent is down, the old upload is replayed as the newest one.
            await send_signed(dashboard, CHAN, v1)
            observer.skip_all()
            async with running(Agent(config, bus=agent_bus(config))):
                state = await observer.state()
    assert reasons(state)["early.sh"] == (
        "rollback: version 1000 is older than the accepted version 2000"
    )
    assert [(s.test, s.sha256) for s in state.scripts] == [("early", sha(b"echo early 2\n"))]
    assert (config.scripts / "received" / "early.sh").read_bytes() == b"echo early 2\n"
    assert StateStore(config.state_dir / f"{config.device_id}.json").load().versions == {
        "early.sh": 2000
    }


async def inject(hub: HubHandle, name: str, data: bytes) -> None:
    """A file a well-behaved client could not upload (hostile name, over 5 MiB)."""
    file_id = str(uuid.uuid4())
    await hub.core.blobs.put(file_id, data)
    hub.core.store.add_file(
        FileRecord(
            sub_key="sub-c-reflex-local",
            channel=CHAN,
            id=file_id,
            name=name,
            size=len(data),
            created="2024-01-01T00:00:00Z",
        )
    )


async def test_a_signature_never_excuses_a_hostile_name_or_size(
    tmp_path: Path, hub: HubHandle
) -> None:
    """Each hostile file carries a valid operator signature in its sidecar: still refused,
    by name or size, and nothing lands anywhere."""
    config = make_config(tmp_path, hub.origin, interval=3600, trusted_keys=(OPERATOR,))
    wanted = [name for name, _ in HOSTILE[:8]]  # ../x.py ... .hidden.py, x.exe
    assert {"../x.py", "/etc/cron.d/x.sh", "a/b.py", "a\\b.py", ".hidden.py", "x.exe"} <= set(
        wanted
    )
    assert any("\x00" in n for n in wanted) and any(len(n.encode()) > 255 for n in wanted)
    for name in wanted:
        data = b"#!/bin/sh\ntouch /tmp/pwned\n"
        await inject(hub, name, data)
        await inject(hub, name + ".sig", sign_script(OPERATOR_KEY, name, data, 1).to_bytes())
    big = b"#" * (6 * 1024 * 1024)
    await inject(hub, "big.sh", big)
    await inject(hub, "big.sh.sig", sign_script(OPERATOR_KEY, "big.sh", big, 1).to_bytes())
    before = tree(tmp_path)
    async with observing(hub.origin, config.device_id) as observer:
        async with running(Agent(config, bus=agent_bus(config))):
            state = await observer.state()
    got = reasons(state)
    assert set(got) == {*wanted, "big.sh"}  # the sidecars are never scripts nor refusals
    assert all(got[name].startswith("bad name:") for name in wanted)
    assert got["big.sh"] == f"too large: {len(big)} bytes (limit 5242880)"
    assert state.scripts == ()
    assert tree(tmp_path) - before <= {"scripts/received", f"state/{config.device_id}.json"}
    assert list((config.scripts / "received").iterdir()) == []


async def test_without_trusted_keys_nothing_runs_unless_allowed(
    tmp_path: Path, hub: HubHandle
) -> None:
    for part in ("strict", "lenient"):
        (tmp_path / part).mkdir()
    strict = make_config(tmp_path / "strict", hub.origin, interval=3600, name="strict")
    lenient = make_config(
        tmp_path / "lenient", hub.origin, interval=3600, name="lenient", allow_unsigned_scripts=True
    )
    swapped = sign_script(OPERATOR_KEY, "swapped.sh", b"echo honest\n", 1)
    async with agent_bus(strict, user_id="dashboard") as dashboard:
        await dashboard.send_file(CHAN, "plain.sh", b"echo plain\n")
        await upload(dashboard, CHAN, "signed.sh", b"echo signed\n")
        # A genuine signature of other bytes, sent the way a dashboard sends signatures.
        await dashboard.send_file(CHAN, signature_file_name("swapped.sh"), swapped.to_bytes())
        await dashboard.send_file(CHAN, "swapped.sh", b"echo swapped\n", message=swapped.to_wire())
        async with (
            observing(hub.origin, "strict") as strict_view,
            observing(hub.origin, "lenient") as lenient_view,
            running(Agent(strict, bus=agent_bus(strict))),
            running(Agent(lenient, bus=agent_bus(lenient))),
        ):
            strict_state = await strict_view.state()
            lenient_state = await lenient_view.state()
            # The lenient agent runs unsigned and foreign-signed scripts...
            await lenient_view.results(lambda m: has_test("plain")(m) and has_test("signed")(m))
    assert strict_state.scripts == ()
    assert reasons(strict_state) == {
        "plain.sh": "unsigned: no operator signature",
        "signed.sh": f"untrusted key: {OPERATOR} is not in trusted_keys",
        "swapped.sh": "bad signature: file content does not match",
    }
    assert [s.test for s in lenient_state.scripts] == ["plain", "signed"]
    # ...but never one whose signature is wrong: a lenient policy waives a missing or
    # unknown signature, not a forged one.
    assert reasons(lenient_state) == {"swapped.sh": "bad signature: file content does not match"}


# --------------------------------------------------------------------------- FileSync on a hub


async def test_sidecar_after_script_cures_the_refusal(tmp_path: Path, hub: HubHandle) -> None:
    config = make_config(tmp_path, hub.origin)
    async with agent_bus(config, user_id="dashboard") as dashboard:
        sync = FileSync(dashboard, CHAN, tmp_path / "received", policy=TrustPolicy((OPERATOR,)))
        data = b"echo late\n"
        sent = await dashboard.send_file(CHAN, "late.sh", data)  # an uploader without messages
        assert await sync.on_event(RemoteFile(sent.id, "late.sh", timetoken=sent.timetoken))
        assert [r.reason for r in sync.rejected] == ["unsigned: no operator signature"]
        sig = sign_script(OPERATOR_KEY, "late.sh", data, 7).to_bytes()
        sidecar = await dashboard.send_file(CHAN, signature_file_name("late.sh"), sig)
        assert await sync.on_event(
            RemoteFile(sidecar.id, sidecar.name, timetoken=sidecar.timetoken)
        )
        assert sync.rejected == ()
        assert (tmp_path / "received" / "late.sh").read_bytes() == data
        assert sync.book.floor("late.sh") == 7
        assert not (tmp_path / "received" / "late.sh.sig").exists()


async def test_dropping_a_key_removes_what_it_signed(tmp_path: Path, hub: HubHandle) -> None:
    """Key compromise: once the key is out of trusted_keys, its scripts stop running at the
    next sync, even those already on disk; the state file remembers across instances."""
    config = make_config(tmp_path, hub.origin)
    received = tmp_path / "received"
    store = StateStore(tmp_path / "state.json")
    new_key = Ed25519PrivateKey.generate()
    new_public = public_key_text(new_key.public_key())
    async with agent_bus(config, user_id="dashboard") as dashboard:
        await upload(dashboard, CHAN, "old.sh", b"echo old\n")  # by the compromised key
        await upload(dashboard, CHAN, "new.sh", b"echo new\n", key=new_key)
        both = TrustPolicy((OPERATOR, new_public))
        first = FileSync(dashboard, CHAN, received, policy=both, book=ReceivedBook(store))
        assert await first.full_sync()
        assert sorted(p.name for p in received.iterdir()) == ["new.sh", "old.sh"]

        rotated = TrustPolicy((new_public,))
        second = FileSync(dashboard, CHAN, received, policy=rotated, book=ReceivedBook(store))
        assert await second.full_sync()
    assert sorted(p.name for p in received.iterdir()) == ["new.sh"]
    assert [(r.file, r.reason.partition(":")[0]) for r in second.rejected] == [
        ("old.sh", "untrusted key")
    ]


def test_sweep_removes_what_cannot_be_vouched_for(tmp_path: Path) -> None:
    """No network: files from an agent that did not check signatures, or edited since they
    were verified, go; verified ones stay; a lenient policy removes nothing."""
    received = tmp_path / "received"
    received.mkdir()
    store = StateStore(tmp_path / "state.json")
    book = ReceivedBook(store)
    (received / "verified.sh").write_bytes(b"echo ok\n")
    book.record("verified.sh", sha(b"echo ok\n"), 5, OPERATOR)
    (received / "edited.sh").write_bytes(b"echo edited\n")
    book.record("edited.sh", sha(b"echo original\n"), 6, OPERATOR)
    (received / "legacy.py").write_bytes(b"print('from an older agent')\n")
    (received / "README").write_bytes(b"not a script\n")  # never a check: left alone

    offline: Any = None  # the sweep needs no file source
    lenient = FileSync(offline, CHAN, received, policy=TrustPolicy((), allow_unsigned=True))
    assert not lenient.sweep()
    strict = FileSync(
        offline, CHAN, received, policy=TrustPolicy((OPERATOR,)), book=ReceivedBook(store)
    )
    assert strict.sweep()
    assert sorted(p.name for p in received.iterdir()) == ["README", "verified.sh"]
    assert {r.file: r.reason.partition(":")[0] for r in strict.rejected} == {
        "edited.sh": "bad signature",
        "legacy.py": "unsigned",
    }
    assert all(isinstance(r, Rejection) and r.reason.endswith("removed") for r in strict.rejected)
    # The floors stay even for removed files: a replay of version 6 is still a rollback.
    again = ReceivedBook(store)
    assert (again.floor("edited.sh"), again.vouch("edited.sh")) == (6, None)
    assert again.vouch("verified.sh") is not None


async def test_once_runs_no_received_script_it_cannot_vouch_for(
    tmp_path: Path, hub: HubHandle
) -> None:
    """`join --once` does not sync, but it still runs nothing unverified from received/."""
    config = make_config(tmp_path, hub.origin, trusted_keys=(OPERATOR,))
    (config.scripts / "local.sh").write_text("echo LOCAL\n")
    received = config.scripts / "received"
    received.mkdir()
    (received / "dropped.sh").write_text("echo DROPPED\n")
    async with observing(hub.origin, config.device_id) as observer:
        assert await Agent(config, bus=agent_bus(config)).run_once()
        message = await observer.results()
    assert [r.test for r in message.results] == ["local"]
    assert not (received / "dropped.sh").exists()
