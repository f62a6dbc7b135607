"""The daemon's pure parts: settings precedence, result building, the script set, the env."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from reflex_agent.commands import AgentSettings
from reflex_agent.daemon import make_result, resolve_settings, script_env
from reflex_agent.perfdata import ParsedOutput, PerfDatum, parse_output
from reflex_agent.registry import Origin, build_catalog
from reflex_agent.state_store import LocalState
from reflex_core.config import Config
from reflex_core.protocol import DeviceSettings, Status

from .agent_harness import write_script

CONFIG = Config(ignore_list=("swap",), interval=30)


@pytest.mark.parametrize(
    ("remote", "local", "expected", "sources"),
    [
        # App Context first (both fields)...
        (
            DeviceSettings(("cpu",), 5),
            LocalState(["disk"], 7),
            AgentSettings(("cpu",), 5),
            ("App Context", "App Context"),
        ),
        # ...an empty stored list is a value, not "missing"...
        (
            DeviceSettings((), None),
            LocalState(["disk"], 7),
            AgentSettings((), 7),
            ("App Context", "state file"),
        ),
        # ...then the local state file...
        (
            DeviceSettings(),
            LocalState(["Disk", "cpu"], 7),
            AgentSettings(("cpu", "disk"), 7),
            ("state file", "state file"),
        ),
        # ...then the config; unusable local values are skipped, not fatal.
        (DeviceSettings(), LocalState(), AgentSettings(("swap",), 30), ("config", "config")),
        (
            DeviceSettings(),
            LocalState(["a,b"], 10**9),
            AgentSettings(("swap",), 30),
            ("config", "config"),
        ),
    ],
)
def test_resolve_settings_precedence(
    remote: DeviceSettings, local: LocalState, expected: AgentSettings, sources: tuple[str, str]
) -> None:
    settings, ignore_from, interval_from = resolve_settings(remote, local, CONFIG)
    assert settings == expected
    assert (ignore_from, interval_from) == sources


def test_make_result_from_plugin_output() -> None:
    parsed = parse_output("DISK OK | /=2643MB;5948;5958;0;5968\nmore\n", 0)
    result = make_result("disk", parsed, 12, 100.0)
    assert (result.status, result.output, result.long_output) == (Status.OK, "DISK OK", "more")
    assert (result.value, result.unit, result.duration_ms, result.ts) == (2643, "MB", 12, 100.0)
    assert result.perf[0].warn == "5948" and result.perf[0].max == 5968


@pytest.mark.parametrize(
    "datum",
    [
        PerfDatum("x", 1.0, "%", warn="10%", crit="@bad range!"),  # thresholds dropped
        PerfDatum("y" * 300, 2.0, ""),  # label shortened
    ],
)
def test_make_result_degrades_instead_of_failing(datum: PerfDatum) -> None:
    parsed = ParsedOutput("warning", 1, "W", value=datum.value, unit=datum.uom, perf=[datum])
    result = make_result("t", parsed, 0, 1.0)
    assert result.status is Status.WARNING and len(result.perf) == 1
    assert result.perf[0].value == datum.value


def test_make_result_never_raises_on_unencodable_values() -> None:
    parsed = ParsedOutput("ok", 0, "x" * 5000, value=math.inf, unit="u\nnit" * 10)
    result = make_result("t", parsed, -5, 1.0)
    assert result.value is None and result.duration_ms == 0 and len(result.output) <= 512


def test_script_env_hides_the_keys_only() -> None:
    env = script_env(
        {
            "PATH": "/bin",
            "REFLEX_PUB": "p",
            "REFLEX_SUB": "s",
            "REFLEX_CIPHER_KEY": "c",
            "REFLEX_AUTH_KEY": "a",
            "REFLEX_PROC_ROOT": "/fake/proc",
        }
    )
    assert env == {"PATH": "/bin", "REFLEX_PROC_ROOT": "/fake/proc"}


def test_catalog_keeps_local_and_received_apart(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    received = scripts / "received"
    received.mkdir(parents=True)
    write_script(scripts, "cpu.py", "print(1)\n")
    write_script(scripts, "cpu.sh", "echo 1\n")  # same test name in one dir: .py wins
    write_script(scripts, "disk.sh", "echo local\n")
    write_script(scripts, "a,b.sh", "echo bad\n")
    write_script(scripts, "notes.txt", "not a check\n")
    write_script(received, "disk.sh", "echo received\n")
    write_script(received, "net.py", "print(2)\n")

    catalog = build_catalog(scripts)
    assert {t: (c.file, c.origin) for t, c in catalog.checks.items()} == {
        "cpu": ("cpu.py", Origin.LOCAL),
        "disk": ("received/disk.sh", Origin.RECEIVED),  # the fleet-wide push wins
        "net": ("received/net.py", Origin.RECEIVED),
    }
    disk = catalog.checks["disk"]
    assert disk.sha256 == hashlib.sha256(b"echo received\n").hexdigest()
    assert catalog.shadowed == ((scripts / "disk.sh", received / "disk.sh"),)
    assert [(c.kept.name, c.skipped.name) for c in catalog.conflicts] == [("cpu.py", "cpu.sh")]
    assert [(r.file, r.reason[:9]) for r in catalog.bad_names] == [("a,b.sh", "bad name:")]
    assert [e.file for e in catalog.entries()] == ["cpu.py", "received/disk.sh", "received/net.py"]
    assert catalog.by_path(scripts / "disk.sh") is None
    assert catalog.by_path(received / "disk.sh") is disk


def test_catalog_of_a_missing_dir_is_empty(tmp_path: Path) -> None:
    assert build_catalog(tmp_path / "nope").checks == {}
