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


def test_bus_speaks_http11_without_loading_h2() -> None:
    """Both handlers (TLS and plain) use HTTP/1.1, so h2/hpack/hyperframe never load."""
    code = (
        "import sys, reflex_core.bus\n"
        "from pubnub.pnconfiguration import PNConfiguration\n"
        "from reflex_core.sdk_fixes import Http11RequestHandler\n"
        "class PN:\n"
        "    def __init__(self, ssl):\n"
        "        self.config = PNConfiguration()\n"
        "        self.config.ssl = ssl\n"
        "for ssl in (True, False):\n"
        "    pool = Http11RequestHandler(PN(ssl))._connector._pool\n"
        "    print(ssl, pool._http2, pool._ssl_context.verify_mode.name)\n"
        "print(sorted(m for m in ('h2', 'hpack', 'hyperframe') if m in sys.modules))\n"
        "import h2\n"
        "print('h2 still importable')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines() == [
        "True False CERT_REQUIRED",
        "False False CERT_NONE",
        "[]",
        "h2 still importable",
    ]


def test_dashboard_does_not_load_cryptography_until_it_signs() -> None:
    """The dashboard needs the operator key only to upload: ~9 MB saved until then."""
    code = (
        "import sys, reflex_tui.cli, reflex_tui.app, reflex_tui.controller\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False"]
