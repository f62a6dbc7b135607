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
