"""The activation switch, read without importing anything heavy (it runs in every Python
process of an environment where the package is installed, through the ``.pth`` hook)."""

from __future__ import annotations

ENV_ACTIVATE = "HYPERTOOL_CALLBACKS"
"""Set to a true value (``1``, ``true``, ``yes``, ``on``) to observe every framework run."""

TRUE_VALUES = frozenset({"1", "true", "yes", "on", "y", "t", "enable", "enabled"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off", "n", "f", "disable", "disabled",
                          "none"})

_warned: set[str] = set()


def flag(value: str | None, name: str = ENV_ACTIVATE) -> bool:
    """Whether an on/off environment value means on. Anything that is neither a usual true nor
    a usual false value means off, with one warning per value (a typo must not turn it on)."""
    if value is None:
        return False
    text = value.strip().lower()
    if text in TRUE_VALUES:
        return True
    if text not in FALSE_VALUES and text not in _warned:
        import logging  # only now: the start-up hook must stay cheap

        _warned.add(text)
        logging.getLogger("hypertool_callbacks").warning(
            "hypertool-callbacks: %s=%r is neither a true value (1/true/yes/on) nor a false one "
            "(0/false/no/off); treating it as off", name, value)
    return False
