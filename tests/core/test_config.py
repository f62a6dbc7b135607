"""Config: file formats, precedence, local mode, and every bad-input case.

Every test injects `env`, `cwd` and `user_dir`, so nothing reads the real
environment or the user's config directory.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

from reflex_core import config as c
from reflex_core.paths import bundled_scripts_dir

SEED_CONFIG = """\
# Reflex agent configuration (seed format: no section header)
pub = pub-key-here
sub = sub-key-here
scripts = scripts
config_chan = config
ignore_chan = ignore
interval = 10
ignore_list =
"""

ED_KEY = "ed25519:" + base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A working directory with an empty user config dir beside it."""
    cwd = tmp_path / "cwd"
    (tmp_path / "user").mkdir()
    cwd.mkdir()
    return cwd


def load(
    home: Path,
    text: str | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    path: str | Path | None = None,
) -> c.LoadedConfig:
    if text is not None:
        (home / "config.ini").write_text(text, encoding="utf-8")
    return c.load_config(
        path, env=env or {}, overrides=overrides, cwd=home, user_dir=home.parent / "user"
    )


def error(home: Path, text: str | None = None, **kwargs: Any) -> str:
    with pytest.raises(c.ConfigError) as caught:
        load(home, text, **kwargs)
    return str(caught.value)


# --- defaults and local mode ----------------------------------------------------------------
def test_no_file_means_local_defaults(home: Path) -> None:
    loaded = load(home)
    cfg = loaded.config
    assert loaded.warnings == ()
    assert cfg.source is None
    assert cfg.local
    assert (cfg.pub, cfg.sub) == (c.LOCAL_PUB_KEY, c.LOCAL_SUB_KEY)
    assert cfg.origin == "127.0.0.1:8787" and cfg.ssl is False
    assert cfg.hub_url == "http://127.0.0.1:8787"
    assert cfg.scripts == bundled_scripts_dir()
    assert (cfg.config_chan, cfg.ignore_chan, cfg.channel) == (
        "config",
        "ignore",
        "availability_monitor",
    )
    assert (cfg.interval, cfg.timeout, cfg.presence_timeout) == (10, 30.0, 120)
    assert cfg.ignore_list == () and cfg.cipher_key is None and cfg.name is None
    assert cfg.allow_unsigned_scripts is False and cfg.trusted_keys == ()
    assert (cfg.resend_after, cfg.sync_every, cfg.log_level) == (20.0, 1800, "INFO")


def test_bundled_scripts_dir_is_the_repo_scripts_dir() -> None:
    assert bundled_scripts_dir() == Path(__file__).resolve().parents[2] / "scripts"


def test_config_defaults_match_loaded_defaults(home: Path) -> None:
    """`Config()` is the documented test config; it must equal an empty load."""
    loaded = load(home).config
    assert dataclasses.replace(c.Config(), source=None) == loaded


@pytest.mark.parametrize(
    "keys",
    [
        "pub = pub-key-here\nsub = sub-key-here\n",
        "pub =\nsub =\n",
        "pub = PUB-KEY-HERE\nsub = Sub-Key-Here\n",
        "",
    ],
)
def test_placeholder_keys_mean_local_mode(home: Path, keys: str) -> None:
    cfg = load(home, keys).config
    assert cfg.local and cfg.pub == c.LOCAL_PUB_KEY and cfg.sub == c.LOCAL_SUB_KEY
    assert cfg.origin == c.LOCAL_ORIGIN and not cfg.ssl


def test_real_keys_talk_to_pubnub(home: Path) -> None:
    cfg = load(home, "pub = pub-c-123\nsub = sub-c-456\n").config
    assert not cfg.local
    assert (cfg.pub, cfg.sub, cfg.origin, cfg.ssl) == ("pub-c-123", "sub-c-456", "", True)
    assert cfg.hub_url is None


def test_real_keys_with_own_origin(home: Path) -> None:
    cfg = load(home, "pub = k1\nsub = k2\norigin = hub.lan:8787\nssl = no\n").config
    assert not cfg.local and cfg.hub_url == "http://hub.lan:8787"


def test_local_mode_keeps_an_explicit_origin(home: Path) -> None:
    cfg = load(home, "origin = 127.0.0.1:9999\n").config
    assert cfg.local and cfg.hub_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("text", "present", "missing"), [("pub = k1\n", "pub", "sub"), ("sub = k2\n", "sub", "pub")]
)
def test_half_configured_keys_are_an_error(
    home: Path, text: str, present: str, missing: str
) -> None:
    message = error(home, text)
    assert message.startswith("config.ini:1: ")
    assert f"{present} is set but {missing} is not" in message
    assert "k1" not in message and "k2" not in message  # keys are never echoed


# --- formats --------------------------------------------------------------------------------
def test_seed_format(home: Path) -> None:
    (home / "scripts").mkdir()
    cfg = load(home, SEED_CONFIG).config
    assert cfg.source == home / "config.ini"
    assert cfg.local and cfg.interval == 10 and cfg.ignore_list == ()
    assert cfg.scripts == home / "scripts"


def test_reflex_section_is_read(home: Path) -> None:
    text = "[reflex]\n" + SEED_CONFIG.replace("interval = 10", "interval = 25")
    assert load(home, text).config.interval == 25


def test_every_key(home: Path) -> None:
    text = f"""\
pub = pub-c-1
sub = sub-c-1
origin = [::1]:8080
ssl = off
scripts = /opt/checks
config_chan = cfg
ignore_chan = cmd
channel = members
interval = 60
ignore_list = CPU, disk
timeout = 2.5
presence_timeout = 300
cipher_key = s3cret
name = Web1.Example.com
auth_key = tok
trusted_keys = {ED_KEY}, {ED_KEY}
allow_unsigned_scripts = yes
signing_key = keys/operator.key
resend_after = 7
sync_every = 600
log_level = debug
state_dir = /var/lib/reflex
"""
    loaded = load(home, text)
    cfg = loaded.config
    assert loaded.warnings == ()
    assert cfg == c.Config(
        pub="pub-c-1",
        sub="sub-c-1",
        origin="[::1]:8080",
        ssl=False,
        scripts=Path("/opt/checks"),
        config_chan="cfg",
        ignore_chan="cmd",
        channel="members",
        interval=60,
        ignore_list=("cpu", "disk"),
        timeout=2.5,
        presence_timeout=300,
        cipher_key="s3cret",
        name="Web1.Example.com",
        auth_key="tok",
        trusted_keys=(ED_KEY,),
        allow_unsigned_scripts=True,
        signing_key=home / "keys/operator.key",
        resend_after=7.0,
        sync_every=600,
        log_level="DEBUG",
        state_dir=Path("/var/lib/reflex"),
        local=False,
        source=home / "config.ini",
    )
    assert cfg.device_id == "web1-example-com"
    assert cfg.resend_after_seconds == 7 * 86_400


def test_comments_quotes_and_blank_values(home: Path) -> None:
    text = """\
; a comment
# another
interval = 15   # seconds
cipher_key = "has # and ; inside"
name = 'web 1'  ; trailing comment
timeout =
"""
    cfg = load(home, text).config
    assert cfg.interval == 15
    assert cfg.cipher_key == "has # and ; inside"
    assert cfg.name == "web 1"
    assert cfg.timeout == c.DEFAULT_TIMEOUT  # empty value = default


def test_utf8_bom_is_fine(home: Path) -> None:
    (home / "config.ini").write_bytes(b"\xef\xbb\xbfinterval = 12\n")
    assert load(home).config.interval == 12


def test_relative_paths_follow_the_file(home: Path, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "reflex.ini").write_text("scripts = checks\nsigning_key = op.key\n")
    cfg = load(home, path=etc / "reflex.ini").config
    assert cfg.scripts == etc / "checks"
    assert cfg.signing_key == etc / "op.key"


def test_relative_paths_from_env_follow_cwd(home: Path) -> None:
    cfg = load(home, env={"REFLEX_SCRIPTS": "mine"}).config
    assert cfg.scripts == home / "mine"


# --- where the file comes from --------------------------------------------------------------
def test_explicit_path_wins(home: Path, tmp_path: Path) -> None:
    (tmp_path / "explicit.ini").write_text("interval = 1\n")
    (tmp_path / "env.ini").write_text("interval = 2\n")
    (home / "config.ini").write_text("interval = 3\n")
    (tmp_path / "user" / "config.ini").write_text("interval = 4\n")
    env = {"REFLEX_CONFIG": str(tmp_path / "env.ini")}
    assert load(home, path=tmp_path / "explicit.ini", env=env).config.interval == 1
    assert load(home, env=env).config.interval == 2
    assert load(home).config.interval == 3
    (home / "config.ini").unlink()
    cfg = load(home).config
    assert cfg.interval == 4 and cfg.source == tmp_path / "user" / "config.ini"


def test_relative_explicit_path_is_relative_to_cwd(home: Path) -> None:
    (home / "other.ini").write_text("interval = 9\n")
    assert load(home, path="other.ini").config.interval == 9


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"path": "missing.ini"}, "--config"),
        ({"env": {"REFLEX_CONFIG": "missing.ini"}}, "REFLEX_CONFIG"),
    ],
)
def test_explicit_missing_file_is_an_error(home: Path, kwargs: dict[str, Any], named: str) -> None:
    message = error(home, **kwargs)
    assert named in message and "missing.ini" in message and "does not exist" in message


def test_explicit_directory_is_an_error(home: Path) -> None:
    assert "is a directory" in error(home, path=home)


def test_find_config_file_none(home: Path) -> None:
    assert c.find_config_file(env={}, cwd=home, user_dir=home.parent / "user") is None


# --- precedence -----------------------------------------------------------------------------
def test_env_beats_file_and_cli_beats_env(home: Path) -> None:
    text = "interval = 10\ntimeout = 5\nname = from-file\n"
    env = {"REFLEX_INTERVAL": "20", "REFLEX_TIMEOUT": "6"}
    cfg = load(home, text, env=env, overrides={"interval": 30, "name": None}).config
    assert cfg.interval == 30  # CLI
    assert cfg.timeout == 6.0  # env
    assert cfg.name == "from-file"  # None override = flag not given


def test_typed_cli_overrides(home: Path) -> None:
    overrides = {"ssl": True, "ignore_list": ["CPU", "disk"], "scripts": Path("/x"), "timeout": 1}
    cfg = load(home, overrides=overrides).config
    assert cfg.ssl is True and cfg.ignore_list == ("cpu", "disk")
    assert cfg.scripts == Path("/x") and cfg.timeout == 1.0


def test_env_can_switch_to_real_keys(home: Path) -> None:
    cfg = load(home, SEED_CONFIG, env={"REFLEX_PUB": "p", "REFLEX_SUB": "s"}).config
    assert not cfg.local and (cfg.pub, cfg.sub) == ("p", "s")


def test_unknown_override_is_an_error(home: Path) -> None:
    assert "unknown setting 'intervall'" in error(home, overrides={"intervall": 3})


# --- bad values -----------------------------------------------------------------------------
def test_bad_interval_message_is_exact(home: Path) -> None:
    message = error(home, "pub = pub-key-here\nsub = sub-key-here\ninterval = ten\n")
    assert message == (
        "config.ini:3: interval = 'ten': expected a whole number of seconds from 1 to 86400"
    )


BAD_VALUES = [
    ("interval = ten", "interval", "whole number of seconds from 1 to 86400"),
    ("interval = 0", "interval", "from 1 to 86400"),
    ("interval = 86401", "interval", "from 1 to 86400"),
    ("interval = 1.5", "interval", "whole number"),
    ("interval = -3", "interval", "from 1 to 86400"),
    ("ssl = maybe", "ssl", "true or false"),
    ("allow_unsigned_scripts = perhaps", "allow_unsigned_scripts", "true or false"),
    ("presence_timeout = 5", "presence_timeout", "from 20 to 3600"),
    ("presence_timeout = 19", "presence_timeout", "from 20 to 3600"),
    ("timeout = -1", "timeout", "above 0"),
    ("timeout = 0", "timeout", "above 0"),
    ("timeout = soon", "timeout", "number of seconds"),
    ("timeout = nan", "timeout", "number of seconds"),
    ("timeout = inf", "timeout", "number of seconds"),
    ("origin = http://127.0.0.1:8787", "origin", "without a scheme"),
    ("origin = 127.0.0.1:99999", "origin", "host:port"),
    ("origin = host name", "origin", "host:port"),
    ("config_chan = a,b", "config_chan", "channel name"),
    ("ignore_chan = device.x", "ignore_chan", "not device.*"),
    ("channel = with space", "channel", "channel name"),
    ("channel = x-pnpres", "channel", "channel name"),
    ("channel = " + "c" * 93, "channel", "channel name"),
    ("ignore_list = cpu, a/b", "ignore_list", "test names"),
    ("ignore_list = " + ",".join(f"t{i}" for i in range(300)), "ignore_list", "256"),
    ("trusted_keys = rsa:abc", "trusted_keys", "ed25519:<base64 of 32 bytes>"),
    ("trusted_keys = ed25519:AAAA", "trusted_keys", "ed25519:"),
    ("trusted_keys = ed25519:!!!", "trusted_keys", "ed25519:"),
    ("resend_after = 0", "resend_after", "days"),
    ("resend_after = 1000", "resend_after", "days"),
    ("sync_every = 0", "sync_every", "from 1 to 86400"),
    ("log_level = loud", "log_level", "debug, info"),
    ("name = " + "n" * 256, "name", "host name"),
]


@pytest.mark.parametrize(("line", "key", "expected"), BAD_VALUES)
def test_bad_value_in_file(home: Path, line: str, key: str, expected: str) -> None:
    message = error(home, f"# header\n{line}\n")
    assert message.startswith(f"config.ini:2: {key} = ")
    assert ": expected " in message and expected in message


@pytest.mark.parametrize(("line", "key", "expected"), BAD_VALUES)
def test_bad_value_in_env_names_the_variable(
    home: Path, line: str, key: str, expected: str
) -> None:
    value = line.partition("=")[2].strip()
    message = error(home, env={f"REFLEX_{key.upper()}": value})
    assert message.startswith(f"REFLEX_{key.upper()}=")
    assert expected in message and "config.ini" not in message


@pytest.mark.parametrize(("line", "key", "expected"), BAD_VALUES)
def test_bad_value_on_cli_names_the_flag(home: Path, line: str, key: str, expected: str) -> None:
    value = line.partition("=")[2].strip()
    message = error(home, overrides={key: value})
    assert message.startswith(f"--{key.replace('_', '-')} ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval 10\n", "config.ini:1: 'interval 10': expected a 'key = value' line"),
        ("# ok\n\njust words\n", "config.ini:3: 'just words': expected a 'key = value' line"),
        ("= 5\n", "config.ini:1: expected a key before '='"),
    ],
)
def test_malformed_lines(home: Path, text: str, expected: str) -> None:
    assert error(home, text) == expected


def test_not_utf8(home: Path) -> None:
    (home / "config.ini").write_bytes(b"name = \xff\xfe\n")
    assert error(home) == "config.ini: not UTF-8 text"


@pytest.mark.parametrize(
    ("text", "blamed"),
    [
        ("config_chan = ignore\n", "config.ini:1: config_chan = 'ignore'"),
        ("channel = config\n", "config.ini:1: channel = 'config'"),
        ("ignore_chan = same\nchannel = same\n", "config.ini:2: channel = 'same'"),
    ],
)
def test_channels_must_differ(home: Path, text: str, blamed: str) -> None:
    message = error(home, text)
    assert message.startswith(blamed) and "must all differ" in message


def test_secret_values_are_not_echoed(home: Path) -> None:
    message = error(home, "pub = topsecret\n")
    assert "topsecret" not in message


# --- warnings -------------------------------------------------------------------------------
def test_unknown_key_is_a_warning_with_a_suggestion(home: Path) -> None:
    loaded = load(home, "interval = 5\nintervall = 7\nfrobnicate = 1\n")
    assert loaded.config.interval == 5
    assert [str(w) for w in loaded.warnings] == [
        "config.ini:2: unknown key 'intervall' (did you mean 'interval'?); ignored",
        "config.ini:3: unknown key 'frobnicate'; ignored",
    ]
    assert (loaded.warnings[0].source, loaded.warnings[0].line) == ("config.ini", 2)


def test_other_sections_are_ignored_with_a_warning(home: Path) -> None:
    loaded = load(home, "interval = 5\n[other]\ninterval = 6\nbogus\n[Reflex]\ntimeout = 3\n")
    assert loaded.config.interval == 5 and loaded.config.timeout == 3.0
    assert [str(w) for w in loaded.warnings] == [
        "config.ini:2: section [other] is not used; its keys are ignored"
    ]


def test_duplicate_key_warns_and_last_wins(home: Path) -> None:
    loaded = load(home, "interval = 5\ninterval = 6\n")
    assert loaded.config.interval == 6
    assert "first on line 1" in str(loaded.warnings[0])


def test_later_keys_do_not_warn(home: Path) -> None:
    """Keys used by later issues are known now, so configs written for them load cleanly."""
    text = f"auth_key = x\ntrusted_keys = {ED_KEY}\nallow_unsigned_scripts = false\n"
    text += "signing_key = k\nresend_after = 20\nsync_every = 1800\nlog_level = info\n"
    text += "state_dir = s\n"
    assert load(home, text).warnings == ()


# --- the CLI helper -------------------------------------------------------------------------
def test_load_config_or_exit_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.ini").write_text("interval = ten\n")
    with pytest.raises(SystemExit) as caught:
        c.load_config_or_exit(env={}, cwd=home, user_dir=home, prog="reflex-agent")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "reflex-agent: config error: config.ini:1: interval = 'ten': "
        "expected a whole number of seconds from 1 to 86400\n"
    )
    assert "Traceback" not in err


def test_load_config_or_exit_prints_warnings(home: Path) -> None:
    (home / "config.ini").write_text("intervall = 5\n")
    out = io.StringIO()
    cfg = c.load_config_or_exit(env={}, cwd=home, user_dir=home, stderr=out)
    assert cfg.interval == c.DEFAULT_INTERVAL
    assert out.getvalue() == (
        "reflex: config warning: config.ini:1: unknown key 'intervall' "
        "(did you mean 'interval'?); ignored\n"
    )


def test_load_config_or_exit_missing_explicit_file(home: Path) -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as caught:
        c.load_config_or_exit("nope.ini", env={}, cwd=home, user_dir=home, stderr=out)
    assert caught.value.code == 2 and "nope.ini: does not exist" in out.getvalue()


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.Config().interval = 5  # type: ignore[misc]


def test_device_name_falls_back_to_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c.socket, "gethostname", lambda: "Box.Example.com")
    assert c.Config().device_name == "Box.Example.com"
    assert c.Config().device_id == "box-example-com"
    assert c.Config(name="override").device_id == "override"


def test_trusted_keys_are_canonical(home: Path) -> None:
    raw = bytes([251] * 32)  # encodes with '+'/'/' in standard base64, '-'/'_' in URL-safe
    standard = "ed25519:" + base64.b64encode(raw).decode()
    urlsafe_unpadded = "ed25519:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    cfg = load(home, f"trusted_keys = {urlsafe_unpadded} , ED25519:{standard[8:]}\n").config
    assert cfg.trusted_keys == (standard,)


def test_overrides_from_args() -> None:
    args = argparse.Namespace(config="x.ini", interval=5, log_level=None, name="n", once=True)
    assert c.overrides_from_args(args) == {"interval": 5, "name": "n"}
    assert c.overrides_from_args({"timeout": 1, "verbose": True}) == {"timeout": 1}


def test_known_keys() -> None:
    issue_keys = {
        "pub", "sub", "origin", "ssl", "scripts", "config_chan", "ignore_chan", "channel",
        "interval", "ignore_list", "timeout", "presence_timeout", "cipher_key", "name",
    }  # fmt: skip
    later_keys = {
        "auth_key", "trusted_keys", "allow_unsigned_scripts", "signing_key", "resend_after",
        "sync_every", "log_level", "state_dir",
    }  # fmt: skip
    assert c.KNOWN_KEYS == issue_keys | later_keys
    assert {f.name for f in dataclasses.fields(c.Config)} == c.KNOWN_KEYS | {"local", "source"}
