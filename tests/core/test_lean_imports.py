"""The agent's memory budget: importing the facade must not drag in cffi/pycparser."""

from __future__ import annotations

import subprocess
import sys


def test_bus_import_keeps_pycryptodome_on_ctypes() -> None:
    code = (
        "import sys, reflex_core.bus\n"
        "from Cryptodome.Cipher import AES\n"
        "AES.new(b'k' * 16, AES.MODE_CBC, iv=b'i' * 16).encrypt(b'x' * 16)\n"
        "print(sorted(m for m in ('cffi', 'pycparser') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_agent_does_not_load_cryptography_until_it_verifies() -> None:
    """cryptography's OpenSSL bindings: ~9 MB an agent that receives nothing never needs."""
    code = (
        "import sys, reflex_agent.cli, reflex_agent.daemon\n"
        "before = 'cryptography' in sys.modules\n"
        "from reflex_core.signing import verify_script, SignatureProblem\n"
        "try:\n"
        "    verify_script(None, 'x.py', b'', ())\n"
        "except SignatureProblem:\n"
        "    pass\n"
        "print(before, 'cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"]
