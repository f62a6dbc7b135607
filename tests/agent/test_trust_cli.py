"""`reflex-agent trust KEY`: the key lands in the file the agent reads, nothing else changes."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reflex_agent.cli import add_trusted_key, trust
from reflex_core.config import load_config
from reflex_core.signing import public_key_text

from .agent_harness import AGENT_BIN, subprocess_env

pytestmark = pytest.mark.timeout(60)

# Fixed keys: they appear in parametrized test ids, which must be the same in every
# collection (pytest-xdist workers compare them).
KEY = public_key_text(Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key())
OTHER = public_key_text(Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())


def trusted(path: Path) -> tuple[str, ...]:
    return load_config(path, env={}, cwd=path.parent).config.trusted_keys


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(working dir, user config dir), both empty."""
    cwd, user = tmp_path / "cwd", tmp_path / "user"
    cwd.mkdir()
    return cwd, user


def run(key: str, dirs: tuple[Path, Path], config: str | None = None, **env: str) -> int:
    cwd, user = dirs
    return trust(key, config, env=env, cwd=cwd, user_dir=user)


def test_creates_the_user_config_when_there_is_none(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(KEY, dirs) == 0
    path = dirs[1] / "config.ini"
    assert path.read_text() == f"trusted_keys = {KEY}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # may later hold pub/sub/cipher keys
    assert trusted(path) == (KEY,)
    assert f"created {path} with trusted_keys = {KEY}" in capsys.readouterr().out


def test_merges_into_the_file_the_agent_reads_keeping_everything_else(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cwd, user = dirs
    path = cwd / "config.ini"  # found before the user one, as `join` would
    original = (
        "# fleet settings\r\n"
        "pub = pub-c-x\r\n"
        "sub = sub-c-x\r\n"
        f"trusted_keys = {OTHER}   # ops laptop\r\n"
        "\r\n"
        "[other-tool]\r\n"
        "trusted_keys = not ours\r\n"
    )
    path.write_bytes(original.encode())
    os.chmod(path, 0o640)
    assert run(KEY, dirs) == 0
    text = path.read_bytes().decode()
    assert text == original.replace(
        f"trusted_keys = {OTHER}   # ops laptop", f"trusted_keys = {OTHER}, {KEY}   # ops laptop"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert trusted(path) == (OTHER, KEY)
    assert f"added {KEY} to trusted_keys in {path}" in capsys.readouterr().out
    assert not (user / "config.ini").exists()
    assert sorted(os.listdir(cwd)) == ["config.ini"]  # no temp file left behind

    # Again, in another spelling (URL-safe, unpadded): already there, file untouched.
    raw = base64.b64decode(KEY.partition(":")[2])
    again = "ed25519:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    mtime = path.stat().st_mtime_ns
    assert run(again, dirs) == 0
    assert path.stat().st_mtime_ns == mtime
    assert "already in trusted_keys" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("", f"trusted_keys = {KEY}\n"),
        ("pub = x", f"pub = x\ntrusted_keys = {KEY}\n"),  # no final newline
        (  # header-less part first, before another tool's section
            "pub = x\n\n[other]\na = 1\n",
            f"pub = x\ntrusted_keys = {KEY}\n\n[other]\na = 1\n",
        ),
        (  # only another tool's section: a header-less line at the top
            "[other]\na = 1\n",
            f"trusted_keys = {KEY}\n[other]\na = 1\n",
        ),
        (  # our [reflex] section, between others
            "[a]\nx = 1\n[reflex]\npub = p\n\n[b]\ny = 2\n",
            f"[a]\nx = 1\n[reflex]\npub = p\ntrusted_keys = {KEY}\n\n[b]\ny = 2\n",
        ),
        ("[reflex]\n", f"[reflex]\ntrusted_keys = {KEY}\n"),
        (  # the last of two lines is the one the reader uses
            f"trusted_keys = {OTHER}\nTrusted_Keys = \n",
            f"trusted_keys = {OTHER}\nTrusted_Keys = {KEY}\n",
        ),
        (f'trusted_keys = "{OTHER}"\n', f'trusted_keys = "{OTHER}, {KEY}"\n'),
    ],
)
def test_edits(original: str, expected: str) -> None:
    edit = add_trusted_key(original, KEY)
    assert edit.changed and edit.text == expected


def test_explicit_config_is_created_if_missing(dirs: tuple[Path, Path]) -> None:
    target = dirs[0] / "etc" / "agent.ini"
    assert run(KEY, dirs, config="etc/agent.ini") == 0
    assert trusted(target) == (KEY,)
    via_env = dirs[0] / "env.ini"
    assert run(OTHER, dirs, REFLEX_CONFIG=str(via_env)) == 0
    assert trusted(via_env) == (OTHER,)


def test_refusals(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ed25519:AAAA", dirs) == 2
    assert "not an operator key: an Ed25519 public key is 32 bytes" in capsys.readouterr().err
    assert not (dirs[1] / "config.ini").exists()
    # An edit that would break a working file is not written.
    path = dirs[0] / "config.ini"
    path.write_text("trusted_keys = ed25519:garbage!\n")
    assert run(KEY, dirs) == 0  # it did not load before: the administrator's to fix
    path.write_text("pub = x\n")
    assert run(KEY, dirs, REFLEX_TRUSTED_KEYS=OTHER) == 0
    assert "REFLEX_TRUSTED_KEYS is set" in capsys.readouterr().err


async def test_the_real_program(tmp_path: Path) -> None:
    config = tmp_path / "agent.ini"
    config.write_text("name = web1\n")
    proc = await asyncio.create_subprocess_exec(
        str(AGENT_BIN),
        "trust",
        KEY,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        f"added {KEY} to trusted_keys in {config}",
        "restart reflex-agent for the change to take effect",
    ]
    assert config.read_text() == f"name = web1\ntrusted_keys = {KEY}\n"
