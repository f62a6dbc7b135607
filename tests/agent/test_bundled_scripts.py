"""The bundled checks, run for real: by the runner as the agent does, and by hand with args."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reflex_agent.perfdata import ParsedOutput, parse_output
from reflex_agent.runner import parse_outcome, run_script

pytestmark = pytest.mark.timeout(60)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ON_LINUX = sys.platform.startswith("linux") and Path("/proc/stat").exists()

# script -> (first perfdata label, unit of the value)
EXPECTED = {
    "cpu": ("cpu", "%"),
    "memory": ("memory", "%"),
    "disk": ("disk", "%"),
    "swap": ("swap", "%"),
    "load": ("load1", ""),
    "processes": ("procs", ""),
}
PREFIX = {
    "cpu": "CPU",
    "memory": "MEMORY",
    "disk": "DISK",
    "swap": "SWAP",
    "load": "LOAD",
    "processes": "PROCS",
}


def by_hand(name: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a bundled check the way a person would: python3 scripts/NAME.py ARGS."""
    full_env = dict(os.environ)
    full_env.pop("REFLEX_PROC_ROOT", None)
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=full_env,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def parsed_by_hand(name: str, *args: str, env: dict[str, str] | None = None) -> ParsedOutput:
    code, stdout, _ = by_hand(name, *args, env=env)
    return parse_output(stdout, code)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_runs_under_the_agent_and_parses(name: str) -> None:
    outcome = await run_script(SCRIPTS / f"{name}.py", timeout=10)
    parsed = parse_outcome(outcome, timeout=10)
    assert outcome.start_error is None and not outcome.timed_out, outcome
    assert outcome.exit_code in (0, 1, 2, 3), outcome
    assert outcome.stderr == ""
    assert outcome.stdout.count("\n") == 1, "one line, plugin convention"
    label, unit = EXPECTED[name]
    assert parsed.output.startswith(f"{PREFIX[name]} {parsed.status.upper()} - ")
    if ON_LINUX:
        assert parsed.status != "unknown", parsed
        assert parsed.perf[0].label == label
        assert isinstance(parsed.value, float) and parsed.value >= 0
        assert parsed.unit == unit
        if unit == "%":
            assert 0 <= parsed.value <= 100
            assert (parsed.perf[0].min, parsed.perf[0].max) == (0.0, 100.0)
        assert parsed.perf[0].warn and parsed.perf[0].crit  # defaults are published


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_threshold_args_force_warning_and_critical(name: str) -> None:
    # "@0:" alerts for any value >= 0, "~:" (minus to plus infinity) never does.
    quick = ("--sample", "0.05") if name == "cpu" else ()
    warning = parsed_by_hand(name, "--warning", "@0:", "--critical", "~:", *quick)
    critical = parsed_by_hand(name, "-w", "~:", "-c", "@0:", *quick)
    relaxed = parsed_by_hand(name, "-w", "~:", "-c", "~:", *quick)
    if not ON_LINUX and name != "disk":
        pytest.skip("no data on this platform")
    assert (warning.status, warning.code) == ("warning", 1)
    assert (critical.status, critical.code) == ("critical", 2)
    assert (relaxed.status, relaxed.code) == ("ok", 0)
    assert warning.perf[0].warn == "@0:" and critical.perf[0].crit == "@0:"


def test_processes_warning_zero_critical_zero_is_critical() -> None:
    parsed = parsed_by_hand("processes", "--warning", "0", "--critical", "0")
    assert parsed.status == "critical" and parsed.value is not None and parsed.value > 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_help_and_bad_arguments(name: str) -> None:
    code, stdout, _ = by_hand(name, "--help")
    assert code == 3  # the guidelines: --help exits UNKNOWN
    assert "usage:" in stdout and "--warning" in stdout and "--critical" in stdout
    code, stdout, _ = by_hand(name, "--warning", "not-a-range")
    assert code == 3
    assert stdout.startswith(f"{PREFIX[name]} UNKNOWN - usage error")
    code, stdout, _ = by_hand(name, "--no-such-option")
    assert code == 3  # not argparse's 2, which would read as CRITICAL


def test_disk_path_argument(tmp_path: Path) -> None:
    for args in ([str(tmp_path)], ["--path", str(tmp_path)], ["-p", str(tmp_path)]):
        parsed = parsed_by_hand("disk", *args)
        assert parsed.status in ("ok", "warning", "critical")
        assert str(tmp_path) in parsed.output
    missing = parsed_by_hand("disk", str(tmp_path / "missing"))
    assert missing.status == "unknown" and "cannot read" in missing.output


# --- fixed numbers through a fake /proc ------------------------------------------------------


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    root.mkdir()
    return root


def meminfo(**fields: int) -> str:
    return "".join(f"{key}: {value} kB\n" for key, value in fields.items())


@pytest.mark.parametrize(
    ("fields", "status", "value"),
    [
        ({"MemTotal": 1000, "MemFree": 10, "MemAvailable": 500}, "ok", 50.0),
        ({"MemTotal": 1000, "MemFree": 10, "MemAvailable": 150}, "warning", 85.0),
        ({"MemTotal": 1000, "MemFree": 10, "MemAvailable": 50}, "critical", 95.0),
        # Old kernels without MemAvailable: free + buffers + cached
        ({"MemTotal": 1000, "MemFree": 100, "Buffers": 100, "Cached": 100}, "ok", 70.0),
    ],
)
def test_memory_fixed_numbers(
    fake_proc: Path, fields: dict[str, int], status: str, value: float
) -> None:
    (fake_proc / "meminfo").write_text(meminfo(**fields))
    parsed = parsed_by_hand("memory", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (parsed.status, parsed.value, parsed.unit) == (status, value, "%")
    used = next(d for d in parsed.perf if d.label == "used")
    assert (used.uom, used.max) == ("B", 1024000.0)


@pytest.mark.parametrize(
    ("total", "free", "status", "value", "text"),
    [
        (0, 0, "ok", 0.0, "no swap configured"),
        (1000, 1000, "ok", 0.0, "0.0% used"),
        (1000, 400, "warning", 60.0, "60.0% used"),
        (1000, 100, "critical", 90.0, "90.0% used"),
    ],
)
def test_swap_fixed_numbers(
    fake_proc: Path, total: int, free: int, status: str, value: float, text: str
) -> None:
    (fake_proc / "meminfo").write_text(meminfo(MemTotal=1000, SwapTotal=total, SwapFree=free))
    parsed = parsed_by_hand("swap", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (parsed.status, parsed.value) == (status, value)
    assert text in parsed.output


def test_load_fixed_numbers(fake_proc: Path) -> None:
    cores = os.cpu_count() or 1
    (fake_proc / "loadavg").write_text("0.00 0.00 0.00 1/80 4242\n")
    idle = parsed_by_hand("load", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (idle.status, idle.value, [d.label for d in idle.perf]) == (
        "ok",
        0.0,
        ["load1", "load5", "load15"],
    )
    (fake_proc / "loadavg").write_text(f"{cores * 1.0:.2f} {cores * 2.0:.2f} 0.00 1/80 4242\n")
    # Only the 5-minute average breaches (2.0 per core > 1.5): status is the worst one.
    busy = parsed_by_hand("load", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (busy.status, busy.value) == ("warning", 1.0)
    assert [d.value for d in busy.perf] == [1.0, 2.0, 0.0]
    assert [(d.warn, d.crit) for d in busy.perf] == [("2", "4"), ("1.5", "3"), ("1", "2")]
    (fake_proc / "loadavg").write_text(f"{cores * 10:.2f} 0 0 1/80 4242\n")
    assert parsed_by_hand("load", env={"REFLEX_PROC_ROOT": str(fake_proc)}).status == "critical"
    one_range = parsed_by_hand("load", "-w", "0.5", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert [d.warn for d in one_range.perf] == ["0.5", "0.5", "0.5"]
    code, stdout, _ = by_hand("load", "-w", "1,2")
    assert code == 3 and "three" in stdout


def test_processes_fixed_numbers(fake_proc: Path) -> None:
    states = {"1": "(init) S", "42": "(my (odd) name) R", "43": "(defunct) Z", "44": "(x) Z"}
    for pid, comm_state in states.items():
        (fake_proc / pid).mkdir()
        (fake_proc / pid / "stat").write_text(f"{pid} {comm_state} 1 1 1 0 -1\n")
    (fake_proc / "self").mkdir()  # non-numeric entries are not processes
    parsed = parsed_by_hand("processes", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (parsed.status, parsed.value) == ("ok", 4.0)
    assert parsed.output == "PROCS OK - 4 processes, 2 zombies"
    assert [(d.label, d.value) for d in parsed.perf] == [("procs", 4.0), ("zombies", 2.0)]
    limited = parsed_by_hand("processes", "-w", "3", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert limited.status == "warning"


def test_processes_falls_back_to_ps_without_proc(fake_proc: Path) -> None:
    parsed = parsed_by_hand("processes", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert parsed.status in ("ok", "warning", "critical")
    assert parsed.value is not None and parsed.value > 0
    no_ps = parsed_by_hand("processes", env={"REFLEX_PROC_ROOT": str(fake_proc), "PATH": ""})
    assert (no_ps.status, no_ps.code) == ("unknown", 3)
    assert "cannot count processes" in no_ps.output


def test_cpu_without_elapsed_time_is_unknown(fake_proc: Path) -> None:
    (fake_proc / "stat").write_text("cpu  100 0 50 1000 5 0 0 0 0 0\ncpu0 100 0 50 1000 5 0 0 0\n")
    parsed = parsed_by_hand("cpu", "--sample", "0.01", env={"REFLEX_PROC_ROOT": str(fake_proc)})
    assert (parsed.status, parsed.code) == ("unknown", 3)
    assert "no CPU time elapsed" in parsed.output


@pytest.mark.parametrize("name", ["cpu", "memory", "swap", "load"])
def test_missing_platform_data_is_unknown_with_a_reason(fake_proc: Path, name: str) -> None:
    code, stdout, stderr = by_hand(name, env={"REFLEX_PROC_ROOT": str(fake_proc)})
    parsed = parse_output(stdout, code)
    assert (code, parsed.status) == (3, "unknown")
    assert stdout.startswith(f"{PREFIX[name]} UNKNOWN - ")
    assert "Traceback" not in stderr
