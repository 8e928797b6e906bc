"""Imported at start-up by ``hypertool-callbacks run``: activate, then chain to any other
``sitecustomize`` the environment had (ours shadows it on PYTHONPATH).

Plain code on purpose: the program run may be any Python, even one without the package.
"""

import os
import sys

try:
    from hypertool_callbacks._autoload import activate
except ImportError as exc:  # another interpreter, without the package installed
    if getattr(exc, "name", None) in ("hypertool_callbacks", "hypertool_callbacks._autoload"):
        python = sys.executable or "this Python"
        sys.stderr.write(f"hypertool-callbacks: not active: {python} cannot import "
                         "hypertool_callbacks; install hypertool-callbacks in that environment\n")
    else:
        sys.stderr.write(f"hypertool-callbacks: not active: {exc}\n")
else:
    try:
        activate(announce=True)
    except Exception as exc:  # never stop the app from starting
        sys.stderr.write(f"hypertool-callbacks: activation failed: {exc!r}\n")


def _chain() -> None:
    # site.py imports "sitecustomize" and then reads sys.modules["sitecustomize"]: it must
    # hold a module when we return, the other one if there is one, else this one.
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        if getattr(exc, "name", None) != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours


_chain()
