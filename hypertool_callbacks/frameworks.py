"""The frameworks hypertool-callbacks can attach to, and attaching them only once imported.

Each :class:`Framework` names the module whose import means the app uses it (``langchain_core``,
``llama_index.core``) and an *integration* module exposing two functions:

* ``attach(tracker)``: observe every run of the framework from now on with ``tracker``
  (idempotent; called again with another tracker, it switches to that one);
* ``detach()``: stop observing (exactly what ``attach`` did, undone).

``instrument()``, ``uninstrument()``, the ``HYPERTOOL_CALLBACKS`` start-up hook, the
``hypertool-callbacks run`` launcher and the OpenTelemetry instrumentor all go through
:func:`attach_all` / :func:`detach_all`. A framework that is installed but not imported yet is
attached by a post-import hook (a ``sys.meta_path`` finder) right after its module finishes
importing, so a process that never imports a framework never pays for one.

Adding a framework is one :func:`register` call at the bottom of this module, e.g.
``Framework("llamaindex", "llama_index.core", "hypertool_callbacks.adapters.llamaindex")``.

This module is imported at interpreter start-up when activation is on: it imports nothing
beyond what every Python process has already loaded.
"""

from __future__ import annotations

import _thread
import sys

# Imports that cost start-up time are for the type checker only (mypy recognises
# ``TYPE_CHECKING`` by name; importing typing itself takes milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

    from hypertool_callbacks.context.tracker import Tracker

__all__ = ["Framework", "attach_all", "attached", "detach_all", "get", "register", "registered"]

_lock = _thread.RLock()


class Framework:
    """One supported framework: the module to watch and the integration that attaches to it."""

    __slots__ = ("integration", "module", "name")

    def __init__(self, name: str, module: str, integration: str) -> None:
        self.name = name
        self.module = module
        self.integration = integration

    def __repr__(self) -> str:
        return f"Framework({self.name!r}, {self.module!r}, {self.integration!r})"

    def imported(self) -> bool:
        return self.module in sys.modules

    def installed(self) -> bool:
        """Whether the framework can be imported (its top-level package is looked up, nothing
        is imported)."""
        if self.imported():
            return True
        top = self.module.partition(".")[0]
        return top in sys.modules or _find_spec(top, None) is not None

    def attach(self, tracker: Tracker) -> None:
        __import__(self.integration)
        sys.modules[self.integration].attach(tracker)

    def detach(self) -> None:
        integration = sys.modules.get(self.integration)
        if integration is not None:  # never imported: nothing was attached
            integration.detach()


_registry: dict[str, Framework] = {}
_attached: set[str] = set()
_pending: dict[str, Framework] = {}   # module name -> framework waiting for its import
_resolve: Callable[[], Tracker | None] | None = None  # set while attached (attach_all)


def register(framework: Framework) -> None:
    """Add (or replace) a framework; attached at once if attachment is on."""
    with _lock:
        _registry[framework.name] = framework
        active = _resolve is not None
    if active:
        _attach_or_watch(framework)


def registered() -> list[Framework]:
    return list(_registry.values())


def get(name: str) -> Framework:
    return _registry[name]


def attached() -> frozenset[str]:
    """Names of the frameworks attached right now."""
    return frozenset(_attached)


def attach_all(resolve: Callable[[], Tracker | None]) -> list[str]:
    """Attach every installed framework: now if imported, else as soon as it is imported.

    ``resolve`` gives the tracker at the moment a framework is attached (None: stay off); it
    may build it then, so a process that never imports a framework never loads its
    configuration. Returns the names of the installed frameworks. An error attaching an
    imported framework propagates (explicit API); one in the import hook is logged.
    """
    global _resolve
    with _lock:
        _resolve = resolve
        frameworks = list(_registry.values())
    return [framework.name for framework in frameworks if _attach_or_watch(framework)]


def detach_all() -> None:
    """Undo :func:`attach_all`: stop watching imports and detach what was attached."""
    global _resolve
    with _lock:
        _resolve = None
        _pending.clear()
        names = list(_attached)
        _attached.clear()
    for name in names:
        framework = _registry.get(name)
        if framework is not None:
            framework.detach()


def _attach_or_watch(framework: Framework) -> bool:
    if framework.imported():
        _attach(framework)
        return True
    if not framework.installed():
        return False
    with _lock:
        _pending[framework.module] = framework
        if not any(isinstance(finder, _Watcher) for finder in sys.meta_path):
            sys.meta_path.insert(0, _Watcher())
    if framework.imported():  # imported by another thread meanwhile
        _on_imported(framework.module)
    return True


def _attach(framework: Framework) -> None:
    # Called without holding _lock: attaching imports framework modules, and another thread
    # importing the framework may be waiting for _lock in the import hook (lock-order deadlock).
    resolve = _resolve
    tracker = resolve() if resolve is not None else None
    if tracker is None:
        return
    framework.attach(tracker)
    with _lock:
        _attached.add(framework.name)


def _on_imported(module: str) -> None:
    with _lock:
        framework = _pending.pop(module, None)
    if framework is None:
        return
    try:
        _attach(framework)
    except Exception:  # inside the app's import statement: must never fail it
        import logging

        logging.getLogger("hypertool_callbacks").exception(
            "hypertool-callbacks: cannot attach to %s; it runs unobserved", framework.name)


def _find_spec(fullname: str, path: Sequence[str] | None,
               target: ModuleType | None = None) -> ModuleSpec | None:
    """What the finders other than ours find (``importlib.util.find_spec`` without importing
    ``importlib.util``, and without recursing into :class:`_Watcher`)."""
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if isinstance(finder, _Watcher) or find_spec is None:
            continue
        try:
            spec: ModuleSpec | None = find_spec(fullname, path, target)
        except ImportError:  # the import system would raise it too: not importable
            return None
        except Exception:
            continue
        if spec is not None:
            return spec
    return None


class _Watcher:
    """A ``sys.meta_path`` finder that finds nothing itself: for a watched module, it asks the
    other finders and wraps the loader, so that :func:`_on_imported` runs once the module has
    executed. Stays in ``sys.meta_path`` for good (removing it could make another thread's
    import skip a finder); with nothing pending it costs one dict lookup per import."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in _pending:
            return None
        spec = _find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _NotifyingLoader(spec.loader)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        """Nothing cached."""


class _NotifyingLoader:
    """The real loader, then the notification. Puts the real loader back on the module so
    that nothing of us stays visible (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        result: ModuleType | None = create(spec) if create is not None else None
        return result

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        _on_imported(module.__name__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


# Callback managers live in langchain_core.callbacks.manager: watching it rather than the top
# package keeps an import of a light corner of langchain_core (its deprecation helpers, its
# messages) as light as without us (langchain-core's own suite checks that pydantic.v1 stays
# unloaded there).
register(Framework("langchain", "langchain_core.callbacks.manager",
                   "hypertool_callbacks.adapters.langchain_hook"))
register(Framework("llamaindex", "llama_index.core", "hypertool_callbacks.adapters.llamaindex"))
