"""Configured rules, compiled once: which persona, stage or gate a run matches."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hypertool_callbacks.config import Matcher, PersonaConfig


@dataclass(frozen=True, slots=True)
class _Patterns:
    """Globs match the whole name (one combined pattern: they cannot clash); regexes search
    anywhere in it, each compiled on its own so inline flags and group names stay local."""

    glob: re.Pattern[str] | None
    regexes: tuple[re.Pattern[str], ...]

    def __call__(self, text: str) -> bool:
        if not text:
            return False
        if self.glob is not None and self.glob.match(text):
            return True
        return any(r.search(text) for r in self.regexes)


def _any_of(globs: list[str], regexes: list[str] | None = None) -> _Patterns | None:
    if not globs and not regexes:
        return None
    glob = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
    return _Patterns(glob, tuple(re.compile(r) for r in regexes or ()))


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a rule can look at for one run. Empty strings mean 'not available'."""

    name: str
    agent: str
    node: str
    system_prompt: str = ""  # lower-cased
    tool: str = ""


class CompiledMatcher:
    """One :class:`Matcher` turned into (at most) a handful of regexes."""

    def __init__(self, matcher: Matcher) -> None:
        self.names = _any_of(matcher.names, matcher.regex)
        self.nodes = _any_of(matcher.nodes)
        keywords, tools = [], []
        if isinstance(matcher, PersonaConfig):
            keywords = [k.lower() for k in matcher.prompt_keywords if k.strip()]
            tools = matcher.tools
        self.keywords = tuple(keywords)
        self.tools = _any_of(tools)

    def matches(self, c: Candidates) -> bool:
        if self.names is not None and (self.names(c.name) or self.names(c.agent)):
            return True
        if self.nodes is not None and self.nodes(c.node):
            return True
        if self.tools is not None and self.tools(c.tool):
            return True
        return bool(c.system_prompt) and any(k in c.system_prompt for k in self.keywords)


class RuleSet:
    """Named matchers in configuration order; the first that matches wins."""

    def __init__(self, matchers: Mapping[str, Matcher]) -> None:
        self._rules = [(name, CompiledMatcher(m)) for name, m in matchers.items()]
        # Name-only lookups repeat endlessly (same node names every run): cache them, bounded.
        self._cache: dict[Candidates, str | None] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, c: Candidates) -> str | None:
        if not self._rules:
            return None
        cacheable = not c.system_prompt
        if cacheable and c in self._cache:
            return self._cache[c]
        found = next((name for name, rule in self._rules if rule.matches(c)), None)
        if cacheable:
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[c] = found
        return found
