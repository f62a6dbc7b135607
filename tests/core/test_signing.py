"""Script signatures: only a trusted key over exactly these bytes, name and version verifies."""

from __future__ import annotations

import base64
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reflex_core.bus import Bus, BusSettings
from reflex_core.events import SentFile
from reflex_core.protocol import RejectReason
from reflex_core.signing import (
    ScriptSignature,
    SignatureProblem,
    TrustPolicy,
    Verdict,
    canonical_key,
    check_upload,
    default_key_path,
    is_signature_document,
    is_signature_file,
    load_or_create_key,
    new_version,
    parse_public_key,
    public_key_text,
    resend_verified,
    script_for_signature_file,
    send_signed,
    sign_script,
    sign_upload,
    signature_documents,
    signature_file_name,
    trust_line,
    verify_script,
)
from reflex_hub import HubHandle

DATA = b"#!/bin/sh\necho 42\n"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def trusted(key: Ed25519PrivateKey) -> tuple[str, ...]:
    return (public_key_text(key.public_key()),)


def test_good_signature_verifies(key: Ed25519PrivateKey) -> None:
    sig = sign_script(key, "x.sh", DATA, 1000)
    verify_script(sig, "x.sh", DATA, trusted(key))
    # and survives the wire
    verify_script(ScriptSignature.from_wire(sig.to_bytes()), "x.sh", DATA, trusted(key))


def _reason(fn) -> RejectReason:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureProblem) as info:
        fn()
    return info.value.reason


def test_refusals(key: Ed25519PrivateKey) -> None:
    sig = sign_script(key, "x.sh", DATA, 1000)
    other = Ed25519PrivateKey.generate()
    assert _reason(lambda: verify_script(None, "x.sh", DATA, trusted(key))) is (
        RejectReason.UNSIGNED
    )
    assert _reason(lambda: verify_script(sig, "x.sh", DATA + b"#", trusted(key))) is (
        RejectReason.BAD_SIGNATURE
    )
    assert _reason(lambda: verify_script(sig, "y.sh", DATA, trusted(key))) is (
        RejectReason.BAD_SIGNATURE
    )
    assert _reason(lambda: verify_script(sig, "x.sh", DATA, trusted(other))) is (
        RejectReason.UNTRUSTED_KEY
    )
    assert _reason(lambda: verify_script(sig, "x.sh", DATA, ())) is RejectReason.UNTRUSTED_KEY


def test_tampered_version_or_sig_is_bad(key: Ed25519PrivateKey) -> None:
    sig = sign_script(key, "x.sh", DATA, 1000)
    newer = ScriptSignature(sig.file, sig.sha256, 2000, sig.key, sig.sig)
    assert _reason(lambda: verify_script(newer, "x.sh", DATA, trusted(key))) is (
        RejectReason.BAD_SIGNATURE
    )
    # an attacker signing with their own key but claiming the trusted key
    forged = sign_script(Ed25519PrivateKey.generate(), "x.sh", DATA, 1000)
    claimed = ScriptSignature(forged.file, forged.sha256, 1000, sig.key, forged.sig)
    assert _reason(lambda: verify_script(claimed, "x.sh", DATA, trusted(key))) is (
        RejectReason.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'{"v":1,"kind":"signature"}',
        b"x" * 10000,
        b'{"v":2,"kind":"signature"}',
        b'{"v":1,"kind":"signature","file":"a","sha256":"b","key":"c","sig":"d","version":true}',
    ],
)
def test_garbage_sidecar_is_bad_signature(raw: bytes) -> None:
    with pytest.raises(SignatureProblem) as info:
        ScriptSignature.from_wire(raw)
    assert info.value.reason is RejectReason.BAD_SIGNATURE


def test_key_file_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "operator.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(path)
    assert public_key_text(again.public_key()) == public_key_text(key.public_key())
    assert parse_public_key(public_key_text(key.public_key()))


def test_sidecar_names() -> None:
    assert signature_file_name("x.py") == "x.py.sig"
    assert script_for_signature_file("x.py.sig") == "x.py"
    assert script_for_signature_file("x.py") is None
    assert script_for_signature_file(".sig") is None


# --------------------------------------------------------------------------- policy


def _problem(fn) -> SignatureProblem:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureProblem) as info:
        fn()
    return info.value


def test_check_upload_picks_the_best_verifying_document(key: Ed25519PrivateKey) -> None:
    policy = TrustPolicy(trusted(key))
    good = sign_script(key, "x.sh", DATA, 1000)
    newer = sign_script(key, "x.sh", DATA, 2000)
    # A hostile document for the same bytes with a huge version, under a foreign key, and
    # garbage: neither shadows the operator's signatures; the highest good version wins.
    hostile = sign_script(Ed25519PrivateKey.generate(), "x.sh", DATA, 10**12)
    candidates = [hostile.to_wire(), b"garbage", good.to_bytes(), newer]
    assert check_upload(candidates, "x.sh", DATA, policy) == Verdict(2000, good.key)
    assert check_upload(candidates, "x.sh", DATA, policy, floor=2000).version == 2000  # equal: ok
    rollback = _problem(lambda: check_upload(candidates, "x.sh", DATA, policy, floor=2001))
    assert rollback.reason is RejectReason.ROLLBACK
    assert str(rollback) == "rollback: version 2000 is older than the accepted version 2001"


def test_check_upload_reports_the_most_telling_refusal(key: Ed25519PrivateKey) -> None:
    policy = TrustPolicy(trusted(key))
    other = Ed25519PrivateKey.generate()
    stale = sign_script(key, "x.sh", b"old bytes", 1).to_wire()  # content mismatch
    foreign = sign_script(other, "x.sh", DATA, 2).to_wire()
    forged = {**sign_script(other, "x.sh", DATA, 3).to_wire(), "key": trusted(key)[0]}
    assert _problem(lambda: check_upload([], "x.sh", DATA, policy)).reason is (
        RejectReason.UNSIGNED
    )
    assert str(_problem(lambda: check_upload([stale], "x.sh", DATA, policy))) == (
        "bad signature: file content does not match"
    )
    assert _problem(lambda: check_upload([stale, foreign], "x.sh", DATA, policy)).reason is (
        RejectReason.UNTRUSTED_KEY
    )
    assert str(_problem(lambda: check_upload([stale, foreign, forged], "x.sh", DATA, policy))) == (
        "bad signature: signature does not verify"
    )
    unreadable = SignatureProblem(RejectReason.BAD_SIGNATURE, "signature file too large")
    assert str(_problem(lambda: check_upload([unreadable], "x.sh", DATA, policy))) == (
        "bad signature: signature file too large"
    )


def test_allow_unsigned_waives_absence_and_strangers_never_forgery(key: Ed25519PrivateKey) -> None:
    lenient = TrustPolicy((), allow_unsigned=True)
    foreign = sign_script(key, "x.sh", DATA, 5).to_wire()
    assert check_upload([], "x.sh", DATA, lenient).unverified == "unsigned: no operator signature"
    assert check_upload([foreign], "x.sh", DATA, lenient).unverified.startswith("untrusted key:")
    mismatch = sign_script(key, "x.sh", b"other", 5).to_wire()
    assert _problem(lambda: check_upload([mismatch], "x.sh", DATA, lenient)).reason is (
        RejectReason.BAD_SIGNATURE
    )
    # A trusted signature under a lenient policy still counts (version, rollback).
    both = TrustPolicy(trusted(key), allow_unsigned=True)
    assert check_upload([foreign], "x.sh", DATA, both) == Verdict(5, trusted(key)[0])
    assert _problem(lambda: check_upload([foreign], "x.sh", DATA, both, floor=6)).reason is (
        RejectReason.ROLLBACK
    )


def test_version_bounds_on_the_wire(key: Ed25519PrivateKey) -> None:
    wire = sign_script(key, "x.sh", DATA, 1).to_wire()
    for bad in (-1, 2**63, 1.5, "1", None):
        with pytest.raises(SignatureProblem):
            ScriptSignature.from_wire({**wire, "version": bad})
    assert ScriptSignature.from_wire({**wire, "version": 2**63 - 1}).version == 2**63 - 1


@pytest.mark.parametrize(
    "spelling",
    [
        lambda raw: "ed25519:" + base64.b64encode(raw).decode(),
        lambda raw: "  ED25519:" + base64.b64encode(raw).decode() + "  ",
        lambda raw: "ed25519:" + base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ],
)
def test_canonical_key_accepts_what_an_operator_pastes(spelling, key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    canonical = trusted(key)[0]
    raw = base64.b64decode(canonical.partition(":")[2])
    assert canonical_key(spelling(raw)) == canonical


@pytest.mark.parametrize("text", ["", "ed25519", "rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"])
def test_canonical_key_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        canonical_key(text)


def test_policy_from_config_and_description(key: Ed25519PrivateKey) -> None:
    from reflex_core.config import Config

    assert "refused" in TrustPolicy.from_config(Config()).describe()
    lenient = TrustPolicy.from_config(Config(allow_unsigned_scripts=True))
    assert lenient.allow_unsigned and "without a trusted signature" in lenient.describe()
    policy = TrustPolicy.from_config(Config(trusted_keys=trusted(key)))
    assert policy.trusted_keys == trusted(key) and "1 trusted key" in policy.describe()
    assert trust_line(trusted(key)[0]) == f"trusted_keys = {trusted(key)[0]}"


# --------------------------------------------------------------------------- sending


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes, object]] = []

    async def send_file(
        self, channel: str, name: str, data: bytes, *, message: object = None, store: bool = True
    ) -> SentFile:
        self.sent.append((channel, name, data, message))
        return SentFile(id=f"id{len(self.sent)}", name=name, timetoken=len(self.sent))


async def test_send_signed_sends_the_sidecar_first_then_the_signed_script(
    key: Ed25519PrivateKey,
) -> None:
    upload = sign_upload(key, "x.sh", DATA, version=42)
    recorder = _Recorder()
    sent = await send_signed(recorder, "config", upload)
    assert sent == SentFile("id2", "x.sh", 2)
    (chan1, name1, data1, msg1), (chan2, name2, data2, msg2) = recorder.sent
    assert (chan1, name1, msg1) == ("config", "x.sh.sig", None)
    assert (chan2, name2, data2) == ("config", "x.sh", DATA)
    # Both carry the same verifiable document.
    assert ScriptSignature.from_wire(data1) == ScriptSignature.from_wire(msg2)
    assert check_upload([data1], "x.sh", DATA, TrustPolicy(trusted(key))).version == 42
    assert is_signature_document(msg2) and is_signature_file(name1) and not is_signature_file(name2)


def test_versions_default_to_now_and_never_go_back(key: Ed25519PrivateKey) -> None:
    before = time.time_ns() // 1_000_000
    version = sign_upload(key, "x.sh", DATA).signature.version
    assert before <= version <= time.time_ns() // 1_000_000
    assert new_version(previous=10**15) == 10**15 + 1


def test_default_key_path(tmp_path: Path) -> None:
    from reflex_core.config import Config

    assert default_key_path(Config(signing_key=tmp_path / "k.pem")) == tmp_path / "k.pem"
    assert default_key_path(Config()).name == "operator.key"


# --------------------------------------------------------------------------- re-sending


async def test_resend_keeps_the_signature_and_refuses_what_the_key_did_not_sign(
    hub: HubHandle, key: Ed25519PrivateKey
) -> None:
    """Re-sending remote bytes must never make the operator's key sign an attacker's upload,
    nor give a replayed old upload a new version."""
    settings = BusSettings(
        publish_key="pub-c-reflex-local",
        subscribe_key="sub-c-reflex-local",
        user_id="dashboard",
        origin=hub.origin,
        ssl=False,
        request_timeout=5,
    )
    async with Bus(settings) as bus:
        old = sign_upload(key, "x.sh", b"echo 1\n", version=1000)
        await send_signed(bus, "config", old)
        await send_signed(bus, "config", sign_upload(key, "x.sh", b"echo 2\n", version=2000))
        # The old bytes, re-sent: they keep version 1000 (agents will refuse the rollback).
        sent = await resend_verified(bus, "config", key, "x.sh", b"echo 1\n")
        assert sent.name == "x.sh"
        newest = await signature_documents(bus, "config", "x.sh")
        assert len(newest) == 3
        assert {ScriptSignature.from_wire(d).version for d in newest} == {1000, 2000}
        # Bytes nobody signed, or signed by someone else: refused, nothing sent.
        await bus.send_file("config", "evil.sh", b"echo pwned\n")
        other = Ed25519PrivateKey.generate()
        await send_signed(bus, "config", sign_upload(other, "foreign.sh", b"echo f\n"))
        before = len(await bus.list_files("config"))
        with pytest.raises(SignatureProblem) as unsigned:
            await resend_verified(bus, "config", key, "evil.sh", b"echo pwned\n")
        with pytest.raises(SignatureProblem) as foreign:
            await resend_verified(bus, "config", key, "foreign.sh", b"echo f\n")
        with pytest.raises(SignatureProblem) as changed:
            await resend_verified(bus, "config", key, "x.sh", b"echo 3\n")
        assert len(await bus.list_files("config")) == before
    assert unsigned.value.reason is RejectReason.UNSIGNED
    assert foreign.value.reason is RejectReason.UNTRUSTED_KEY
    assert changed.value.reason is RejectReason.BAD_SIGNATURE
