"""Keep the SDK's import footprint small on monitored hosts.

The agent's memory goal is 40 MB, and most of it is the interpreter and the
SDK. PyCryptodome (the SDK's cipher library) prefers the ``cffi`` backend
when ``cffi`` is importable, which parses C declarations with ``pycparser``
at import time: about 1 MiB of resident memory and 30 ms that its ``ctypes``
backend, functionally identical, does not cost. Importing PyCryptodome's
raw-API module once with ``cffi`` hidden makes it settle on ``ctypes`` for
the life of the process; ``cffi`` itself stays importable for anyone else.

Must run before the first ``pubnub`` import (`reflex_core.bus` imports this
module first). Remove if PyCryptodome ever stops preferring cffi.
"""

from __future__ import annotations

import sys


def prefer_ctypes_for_pycryptodome() -> None:
    if "Cryptodome.Util._raw_api" in sys.modules:
        return
    missing = object()
    saved = sys.modules.get("cffi", missing)
    sys.modules["cffi"] = None  # type: ignore[assignment]  # makes `import cffi` fail
    try:
        import Cryptodome.Util._raw_api  # noqa: F401
    except ImportError:
        pass  # no PyCryptodome: nothing to steer
    finally:
        if saved is missing:
            del sys.modules["cffi"]
        else:
            sys.modules["cffi"] = saved  # type: ignore[assignment]


prefer_ctypes_for_pycryptodome()
