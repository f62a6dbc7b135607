"""Keep the SDK's import footprint small on monitored hosts.

The agent's memory goal is 40 MB, and most of it is the interpreter and the
SDK. PyCryptodome (the SDK's cipher library) prefers the ``cffi`` backend
when ``cffi`` is importable, which parses C declarations with ``pycparser``
at import time: about 1 MiB of resident memory and 30 ms that its ``ctypes``
backend, functionally identical, does not cost. Importing PyCryptodome's
raw-API module once with ``cffi`` hidden makes it settle on ``ctypes`` for
the life of the process; ``cffi`` itself stays importable for anyone else.

The same goes for HTTP/2: ``httpcore`` imports ``h2`` (with ``hpack`` and
``hyperframe``) whenever it is installed, and the SDK depends on it. Reflex
speaks HTTP/1.1 only (`sdk_fixes.Http11RequestHandler`), so ``httpcore`` is
imported once with ``h2`` hidden and settles on HTTP/1.1: about 1 MiB more.
A process that later asks httpx for ``http2=True`` and gets HTTP/2 from the
server fails with httpcore's RuntimeError ("the `h2` package is not
installed"), not with a silent downgrade.

Must run before the first ``pubnub`` import (`reflex_core.bus` imports this
module first). Remove each when its library stops importing the optional one
eagerly (PyCryptodome preferring cffi; httpcore importing h2).
"""

from __future__ import annotations

import sys


def _import_hiding(module: str, hidden: str) -> None:
    """Import `module` while `import <hidden>` fails, then make `hidden` importable again."""
    if module in sys.modules:
        return
    missing = object()
    saved = sys.modules.get(hidden, missing)
    sys.modules[hidden] = None  # type: ignore[assignment]  # makes `import <hidden>` fail
    try:
        __import__(module)
    except ImportError:
        pass  # the library is absent: nothing to steer
    finally:
        if saved is missing:
            del sys.modules[hidden]
        else:
            sys.modules[hidden] = saved  # type: ignore[assignment]


def prefer_ctypes_for_pycryptodome() -> None:
    _import_hiding("Cryptodome.Util._raw_api", "cffi")


def prefer_http11_for_httpcore() -> None:
    _import_hiding("httpcore", "h2")


prefer_ctypes_for_pycryptodome()
prefer_http11_for_httpcore()
