"""Script signatures: only a trusted key over exactly these bytes, name and version verifies."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reflex_core.protocol import RejectReason
from reflex_core.signing import (
    ScriptSignature,
    SignatureProblem,
    load_or_create_key,
    parse_public_key,
    public_key_text,
    script_for_signature_file,
    sign_script,
    signature_file_name,
    verify_script,
)

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
    [b"", b"{", b"[]", b'{"v":1,"kind":"signature"}', b"x" * 10000, b'{"v":2,"kind":"signature"}',
     b'{"v":1,"kind":"signature","file":"a","sha256":"b","key":"c","sig":"d","version":true}'],
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
