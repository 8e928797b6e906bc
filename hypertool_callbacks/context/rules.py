"""Configured rules, compiled once: which persona, stage or gate a run matches."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hypertool_callbacks.config import Matcher, PersonaConfig


# Globs match the whole name; regexes search anywhere in it (``re.search`` semantics).
def _any_of(globs: list[str], regexes: list[str] | None = None) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(g) for g in globs] + [f"(?s:.*?)(?:{r})" for r in regexes or ()]
    return re.compile("|".join(parts)) if parts else None


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
        if self.names is not None and (
            (c.name and self.names.match(c.name)) or (c.agent and self.names.match(c.agent))
        ):
            return True
        if self.nodes is not None and c.node and self.nodes.match(c.node):
            return True
        if self.tools is not None and c.tool and self.tools.match(c.tool):
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
