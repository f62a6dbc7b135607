"""Operator signatures on scripts distributed over the network.

Uploading a script is remote code execution on every host, and anyone with the
publish key can upload. So each upload carries an Ed25519 signature by the
operator's key over (file name, sha256 of the bytes, upload version), and an
agent runs a received file only if the signature verifies against a key in its
``trusted_keys``. The version (a millisecond timestamp) lets the agent refuse
an older upload of the same name: a replayed old script is a rollback.

The signature travels twice, so that both ways an agent learns of a file can
check it: inside the file event's message (live path) and as a sidecar file
``<name>.sig`` on the same channel (start-up ``list_files`` path, which carries
no messages). Both hold the same JSON document, `ScriptSignature.to_wire()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reflex_core.protocol import RejectReason

SIG_SUFFIX = ".sig"
KEY_PREFIX = "ed25519:"
_DOMAIN = b"reflex-script-signature-v1\n"
MAX_SIG_BYTES = 4096


class SignatureProblem(Exception):
    """Why a received script is refused; `str()` reads ``<category>: <detail>``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _signed_bytes(name: str, digest: str, version: int) -> bytes:
    # A fixed domain prefix and newline-separated fields: a signature made for
    # anything else (another name, another version) can never verify here.
    return _DOMAIN + f"{name}\n{digest}\n{version}".encode()


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>``; raises ValueError with a readable reason."""
    algorithm, sep, encoded = text.strip().partition(":")
    if not sep or algorithm.lower() != "ed25519":
        raise ValueError("expected ed25519:<base64 of 32 bytes>")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class ScriptSignature:
    """The signed claim: this key vouches for these bytes under this name and version."""

    file: str
    sha256: str
    version: int
    key: str
    sig: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": "signature",
            "file": self.file,
            "sha256": self.sha256,
            "version": self.version,
            "key": self.key,
            "sig": self.sig,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()

    @classmethod
    def from_wire(cls, obj: object) -> ScriptSignature:
        """Strict parse; anything odd is a bad signature, never an exception of another type."""
        if isinstance(obj, bytes | bytearray):
            if len(obj) > MAX_SIG_BYTES:
                raise SignatureProblem(RejectReason.BAD_SIGNATURE, "signature file too large")
            try:
                obj = json.loads(obj)
            except (ValueError, UnicodeDecodeError):
                raise SignatureProblem(
                    RejectReason.BAD_SIGNATURE, "signature is not JSON"
                ) from None
        if not isinstance(obj, dict) or obj.get("kind") != "signature" or obj.get("v") != 1:
            raise SignatureProblem(RejectReason.BAD_SIGNATURE, "not a v1 signature document")
        fields = {k: obj.get(k) for k in ("file", "sha256", "key", "sig")}
        version = obj.get("version")
        if not all(isinstance(v, str) and v for v in fields.values()) or not (
            isinstance(version, int) and not isinstance(version, bool) and version >= 0
        ):
            raise SignatureProblem(RejectReason.BAD_SIGNATURE, "signature fields missing or wrong")
        return cls(version=version, **fields)  # type: ignore[arg-type]


def sign_script(key: Ed25519PrivateKey, name: str, data: bytes, version: int) -> ScriptSignature:
    digest = sha256_hex(data)
    sig = key.sign(_signed_bytes(name, digest, version))
    return ScriptSignature(
        file=name,
        sha256=digest,
        version=version,
        key=public_key_text(key.public_key()),
        sig=base64.b64encode(sig).decode("ascii"),
    )


def verify_script(
    signature: ScriptSignature | None,
    name: str,
    data: bytes,
    trusted_keys: tuple[str, ...] | list[str],
) -> None:
    """Raise `SignatureProblem` unless a trusted key signed exactly these bytes under ``name``."""
    if signature is None:
        raise SignatureProblem(RejectReason.UNSIGNED, "no operator signature")
    if signature.file != name:
        raise SignatureProblem(
            RejectReason.BAD_SIGNATURE, f"signature is for {signature.file!r}, not {name!r}"
        )
    if signature.sha256 != sha256_hex(data):
        raise SignatureProblem(RejectReason.BAD_SIGNATURE, "file content does not match")
    try:
        public = parse_public_key(signature.key)
    except ValueError as exc:
        raise SignatureProblem(RejectReason.BAD_SIGNATURE, str(exc)) from None
    if public_key_text(public) not in trusted_keys:
        raise SignatureProblem(
            RejectReason.UNTRUSTED_KEY, f"{signature.key} is not in trusted_keys"
        )
    try:
        raw = base64.b64decode(signature.sig, validate=True)
        public.verify(raw, _signed_bytes(name, signature.sha256, signature.version))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureProblem(RejectReason.BAD_SIGNATURE, "signature does not verify") from None


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The operator's signing key; created on first use, readable by its owner only."""
    if path.exists():
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def signature_file_name(script_name: str) -> str:
    return script_name + SIG_SUFFIX


def script_for_signature_file(name: str) -> str | None:
    """``x.py.sig`` -> ``x.py``; None if ``name`` is not a sidecar."""
    if name.endswith(SIG_SUFFIX) and len(name) > len(SIG_SUFFIX):
        return name[: -len(SIG_SUFFIX)]
    return None
