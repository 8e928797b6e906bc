"""Imported at start-up by ``hypertool-callbacks run``: activate, then chain to any other
``sitecustomize`` the environment had (ours shadows it on PYTHONPATH)."""

import os
import sys

try:
    from hypertool_callbacks._autoload import activate

    activate()
except Exception as exc:  # never stop the app from starting
    sys.stderr.write(f"hypertool-callbacks: activation failed: {exc!r}\n")

_here = os.path.dirname(os.path.abspath(__file__))
_saved = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["sitecustomize"]
try:
    import sitecustomize  # type: ignore[import-not-found]  # noqa: F401
except ImportError:
    pass
finally:
    sys.path[:] = _saved
