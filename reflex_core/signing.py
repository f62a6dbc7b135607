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

Senders call `sign_upload` then `send_signed` (sidecar first, then the script with the
signature as its file message; see docs/PROTOCOL.md), and `resend_verified` to re-send bytes
taken from the channel (never a fresh signature over them). Receivers call `check_upload`
with every signature document they could find for the file and their `TrustPolicy`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reflex_core.events import FileInfo, SentFile
from reflex_core.paths import user_config_dir
from reflex_core.protocol import RejectReason

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

# `cryptography` is imported inside the functions that need it, not here: its OpenSSL
# bindings cost about 9 MB of resident memory, and an agent that receives no scripts
# (most of the time, most hosts) never needs them. Its memory goal is 40 MB.

SIG_SUFFIX = ".sig"
KEY_PREFIX = "ed25519:"
_DOMAIN = b"reflex-script-signature-v1\n"
MAX_SIG_BYTES = 4096
_DOES_NOT_VERIFY = "signature does not verify"
#: Versions are millisecond timestamps; the cap keeps them a JSON-safe 64-bit integer.
MAX_VERSION = 2**63 - 1
#: Where the dashboard keeps the operator key unless `signing_key = PATH` says otherwise.
DEFAULT_KEY_FILE_NAME = "operator.key"


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
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def canonical_key(text: str) -> str:
    """``ed25519:<base64>`` in the one spelling `trusted_keys` compares against.

    Accepts what an operator might paste: standard or URL-safe base64, padding optional,
    any case of the ``ed25519`` prefix, surrounding spaces. Raises ValueError (readable).
    """
    algorithm, sep, encoded = text.strip().partition(":")
    if not sep or algorithm.strip().lower() != "ed25519":
        raise ValueError("expected ed25519:<base64 of 32 bytes>")
    standard = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def trust_line(public_key: str) -> str:
    """The config line an agent needs to trust this key (what the dashboard shows)."""
    return f"trusted_keys = {public_key}"


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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
            isinstance(version, int)
            and not isinstance(version, bool)
            and 0 <= version <= MAX_VERSION
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
    from cryptography.exceptions import InvalidSignature

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
        raise SignatureProblem(RejectReason.BAD_SIGNATURE, _DOES_NOT_VERIFY) from None


# --------------------------------------------------------------------------- receiving


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """Which network scripts an agent runs: `trusted_keys` and `allow_unsigned_scripts`.

    With no trusted key nothing from the network runs unless `allow_unsigned` is set; that
    switch waives a missing or untrusted signature only, never a forged or mismatching one
    (a wrong signature means the bytes or the claim were altered on the way).
    """

    trusted_keys: tuple[str, ...] = ()
    allow_unsigned: bool = False

    @classmethod
    def from_config(cls, config: object) -> TrustPolicy:
        keys = tuple(getattr(config, "trusted_keys", ()) or ())
        return cls(
            trusted_keys=tuple(dict.fromkeys(canonical_key(k) for k in keys)),
            allow_unsigned=bool(getattr(config, "allow_unsigned_scripts", False)),
        )

    def describe(self) -> str:
        """One log line saying what an operator must know about this agent's policy."""
        if self.allow_unsigned:
            return (
                "allow_unsigned_scripts = true: scripts from the network run even without a "
                "trusted signature"
            )
        if not self.trusted_keys:
            return (
                "no trusted_keys: scripts from the network are refused "
                "(add the operator key with: reflex-agent trust ed25519:...)"
            )
        count = len(self.trusted_keys)
        return f"scripts from the network run only if signed by one of {count} trusted key(s)"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A received script may be written and run.

    `version`/`key` are set when a trusted signature verified (the version becomes the
    rollback floor for the name); `unverified` says why it runs without one
    (`allow_unsigned_scripts`), for the log.
    """

    version: int | None = None
    key: str | None = None
    unverified: str | None = None


def is_signature_document(obj: object) -> bool:
    """True for what looks like a signature (a file message): worth verifying, not ignoring."""
    return isinstance(obj, dict) and obj.get("kind") == "signature"


def is_signature_file(name: object) -> bool:
    """``*.sig`` files on `config_chan` are signatures, never scripts (nor refused scripts)."""
    return isinstance(name, str) and name.endswith(SIG_SUFFIX)


def _rank(problem: SignatureProblem) -> int:
    """Which refusal to report when several documents fail: a forgery under a trusted key
    first, then a foreign key that signed these very bytes, then everything else."""
    if problem.reason is RejectReason.BAD_SIGNATURE and problem.detail == _DOES_NOT_VERIFY:
        return 3
    if problem.reason is RejectReason.UNTRUSTED_KEY:
        return 2
    return 1


def best_signature(
    candidates: Iterable[object], name: str, data: bytes, trusted_keys: tuple[str, ...]
) -> ScriptSignature:
    """The verifying signature with the highest version among `candidates` (raw dicts or
    bytes, parsed, or `SignatureProblem`s of unreadable ones). Raises the most telling
    `SignatureProblem` when none verifies (`unsigned` when there are none)."""
    best: ScriptSignature | None = None
    problems: list[SignatureProblem] = []
    for raw in candidates:
        if isinstance(raw, SignatureProblem):  # a document that could not even be read
            problems.append(raw)
            continue
        try:
            signature = raw if isinstance(raw, ScriptSignature) else ScriptSignature.from_wire(raw)
            verify_script(signature, name, data, trusted_keys)
        except SignatureProblem as problem:
            problems.append(problem)
            continue
        if best is None or signature.version > best.version:
            best = signature
    if best is not None:
        return best
    if not problems:
        raise SignatureProblem(RejectReason.UNSIGNED, "no operator signature")
    raise max(problems, key=_rank)  # max keeps the first (newest) of equal rank


def check_upload(
    candidates: Iterable[object],
    name: str,
    data: bytes,
    policy: TrustPolicy,
    floor: int | None = None,
) -> Verdict:
    """Decide whether a received script may run. Raises `SignatureProblem` if not.

    `candidates` are every signature document found for the file (the file message, or the
    ``<name>.sig`` sidecars), raw (dict or bytes), parsed, or the `SignatureProblem` of one
    that could not be read, newest first. The one with the highest version among those that
    verify wins, so a stray or hostile sidecar can never shadow a good one. `floor` is the
    version this agent already accepted for `name`: an older one is a rollback.
    """
    try:
        best = best_signature(candidates, name, data, policy.trusted_keys)
    except SignatureProblem as problem:
        if policy.allow_unsigned and problem.reason in (
            RejectReason.UNSIGNED,
            RejectReason.UNTRUSTED_KEY,
        ):
            return Verdict(unverified=str(problem))
        raise
    if floor is not None and best.version < floor:
        raise SignatureProblem(
            RejectReason.ROLLBACK,
            f"version {best.version} is older than the accepted version {floor}",
        )
    return Verdict(version=best.version, key=best.key)


# --------------------------------------------------------------------------- sending


class FileSender(Protocol):
    """The part of `reflex_core.bus.Bus` `send_signed` uses."""

    async def send_file(
        self, channel: str, name: str, data: bytes, *, message: Any = None, store: bool = True
    ) -> SentFile: ...


class FileStore(FileSender, Protocol):
    """The part of `reflex_core.bus.Bus` `resend_verified` uses."""

    async def list_files(self, channel: str) -> list[FileInfo]: ...

    async def download_file(self, channel: str, file_id: str, name: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """Everything to send for one script: its bytes, the file message, the sidecar."""

    name: str
    data: bytes
    signature: ScriptSignature

    @property
    def message(self) -> dict[str, Any]:
        """The file message of the script upload (the live path verifies this)."""
        return self.signature.to_wire()

    @property
    def sidecar_name(self) -> str:
        return signature_file_name(self.name)

    @property
    def sidecar_bytes(self) -> bytes:
        """The sidecar's content (the start-up listing path verifies this)."""
        return self.signature.to_bytes()


def new_version(previous: int | None = None) -> int:
    """An upload version: now in milliseconds, and always above `previous` if given (two
    uploads of one name within a millisecond, or a clock that stepped back)."""
    now = time.time_ns() // 1_000_000
    return now if previous is None or now > previous else previous + 1


def sign_upload(
    key: Ed25519PrivateKey, name: str, data: bytes, *, version: int | None = None
) -> SignedUpload:
    """Sign `data` for upload as `name`; `version` defaults to now (ms). Send the result
    with `send_signed`."""
    return SignedUpload(name, bytes(data), sign_script(key, name, data, version or new_version()))


async def send_signed(bus: FileSender, channel: str, upload: SignedUpload) -> SentFile:
    """Upload the sidecar, then the script with the signature as its file message.

    Sidecar first: by the time an agent hears of the script (live event, or a listing) its
    signature is already there. Returns the script's `SentFile`. Raises the bus's error; a
    sidecar left behind by a failed script upload is harmless (it matches no script bytes).
    """
    await bus.send_file(channel, upload.sidecar_name, upload.sidecar_bytes)
    return await bus.send_file(channel, upload.name, upload.data, message=upload.message)


#: Sidecars read per script name, newest first: enough for any honest history, and a bound
#: on what a flood of hostile ``.sig`` uploads can make a reader download.
MAX_SIDECARS_PER_NAME = 16


async def signature_documents(bus: FileStore, channel: str, name: str) -> list[object]:
    """The content of every ``<name>.sig`` on `channel`, newest first (an oversized one as
    its `SignatureProblem`), ready for `check_upload` / `best_signature`. Raises the bus's
    error."""
    wanted = signature_file_name(name)
    infos = [info for info in await bus.list_files(channel) if info.name == wanted]
    ordered = [info for _, info in sorted(enumerate(infos), key=lambda x: (x[1].created, x[0]))]
    documents: list[object] = []
    for info in reversed(ordered[-MAX_SIDECARS_PER_NAME:]):
        if info.size > MAX_SIG_BYTES:
            documents.append(
                SignatureProblem(RejectReason.BAD_SIGNATURE, "signature file too large")
            )
            continue
        documents.append(await bus.download_file(channel, info.id, info.name))
    return documents


async def resend_verified(
    bus: FileStore, channel: str, key: Ed25519PrivateKey, name: str, data: bytes
) -> SentFile:
    """Send bytes taken from the channel again (File Sharing retention) with the signature
    they already carry: the same version, never a new one.

    Raises `SignatureProblem` unless `key` itself signed exactly these bytes under `name`.
    Signing whatever is on the channel would sign an attacker's upload, and re-signing an
    old upload with a new version would turn a replay into an accepted update.
    """
    own = (public_key_text(key.public_key()),)
    documents = await signature_documents(bus, channel, name)
    signature = best_signature(documents, name, data, own)
    return await send_signed(bus, channel, SignedUpload(name, bytes(data), signature))


def default_key_path(config: object | None = None) -> Path:
    """The operator key file: `signing_key` from the config, else the user config dir."""
    configured = getattr(config, "signing_key", None) if config is not None else None
    return Path(configured) if configured else user_config_dir() / DEFAULT_KEY_FILE_NAME


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The operator's signing key; created on first use, readable by its owner only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
