"""Who is acting and where: persona, stage, workflow, agent and gate of a run.

Framework-neutral: it reads names, tags and metadata keys, never a framework object.
Resolved once when a run starts; every value is bounded before it becomes a label.

Persona, first match wins:
  1. explicit: metadata ``hypertool_persona`` or tag ``persona:<name>`` (innermost wins);
  2. configured rules (run/agent name, LangGraph node, system-prompt keyword, tool name);
  3. a tool run: the persona of the LLM call that asked for it (``run.requested_by``);
  4. structure: the innermost *named* agent the run belongs to (see ``_agent``);
  5. the parent run's persona;
  6. a run doing work (not a chain) in a LangGraph node with a non-generic name: that node
     (``node_personas``; off: skipped); else ``unknown``.
Stage: explicit (``hypertool_stage`` / ``stage:<name>``) > stage rules > the node of the
outermost graph (a generic node name such as ``model``/``tools`` is replaced by the agent's
name) > parent's stage > ``unknown``.
Workflow: explicit (``hypertool_workflow`` / ``workflow:<name>``) > the root run's name >
parent's workflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypertool_callbacks.config import Config
from hypertool_callbacks.context.labels import BoundedLabels, clean
from hypertool_callbacks.context.rules import Candidates, RuleSet
from hypertool_callbacks.context.runs import UNKNOWN, Run, Source
from hypertool_callbacks.events import RunKind

# Enum members read once: on Python 3.11 ``RunKind.LLM`` goes through EnumType's
# __getattr__ hook, several times the cost of a module constant.
_CALLER = Source.CALLER
_CHAIN = RunKind.CHAIN
_EXPLICIT = Source.EXPLICIT
_INHERITED = Source.INHERITED
_NODE = Source.NODE
_NONE = Source.NONE
_RULE = Source.RULE
_STRUCTURE = Source.STRUCTURE
_TOOL = RunKind.TOOL


NODE_KEY = "langgraph_node"
NAMESPACE_KEY = "langgraph_checkpoint_ns"
AGENT_KEY = "lc_agent_name"
THREAD_KEY = "thread_id"
NODE_TAG_PREFIX = "graph:step:"


EXPLICIT_KEYS = ("persona", "stage", "workflow", "gate")
_META_KEYS = tuple((key, f"hypertool_{key}") for key in EXPLICIT_KEYS)
_EXPLICIT_META_KEYS = tuple(meta_key for _, meta_key in _META_KEYS)
_EXPLICIT_META_SET = frozenset(_EXPLICIT_META_KEYS)


def explicit(tags: Sequence[str], metadata: Mapping[str, Any]) -> dict[str, str]:
    """Explicit values by key: ``hypertool_<key>`` metadata, else the last ``<key>:<value>``
    tag (the innermost). One pass over the tags for all keys: this runs for every run."""
    found: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, str):
            continue
        key, sep, value = tag.partition(":")
        if sep and key in EXPLICIT_KEYS:
            cleaned = clean(value)
            if cleaned:
                found[key] = cleaned
    for key, meta_key in _META_KEYS:
        raw = metadata.get(meta_key)
        if raw is not None:
            cleaned = clean(raw)
            if cleaned:
                found[key] = cleaned
    return found


def is_node_run(tags: Sequence[str], metadata: Mapping[str, Any]) -> bool:
    """A LangGraph node run (the graph's direct child), as opposed to a run inside a node."""
    if NODE_KEY not in metadata:
        return False
    for tag in tags:  # noqa: SIM110  (a loop, not any(<genexpr>): this runs for every run)
        if isinstance(tag, str) and tag.startswith(NODE_TAG_PREFIX):
            return True
    return False


class Resolver:
    """Resolves and bounds persona, stage, workflow, agent and gate for new runs."""

    def __init__(self, config: Config) -> None:
        self.generic = config.generic_names
        self.node_personas = config.node_personas
        self.persona_rules = RuleSet(config.personas)
        self.stage_rules = RuleSet(config.stages)
        self.gate_rules = RuleSet(config.gates)
        cap = config.label_cap
        self.personas = BoundedLabels(cap, fixed=config.personas, always=[UNKNOWN])
        self.stages = BoundedLabels(cap, fixed=config.stages, always=[UNKNOWN])
        self.workflows = BoundedLabels(cap, always=[UNKNOWN])
        self.gates = BoundedLabels(cap, fixed=config.gates)
        self.models = BoundedLabels(cap, always=[UNKNOWN])
        self.tools = BoundedLabels(cap * 4)
        # Asked per run: plain flags (a RuleSet's truth is a Python call each time).
        self._persona_rules_on = bool(self.persona_rules)
        self._stage_rules_on = bool(self.stage_rules)
        self._gate_rules_on = bool(self.gate_rules)
        self.has_rules = self._persona_rules_on or self._stage_rules_on or self._gate_rules_on

    @staticmethod
    def adds_nothing(tags: Sequence[str], metadata: Mapping[str, Any], parent: Run) -> bool:
        """Whether a chain run with these tags and metadata would inherit everything from
        ``parent``: no node or agent of its own, no explicit key its parent lacks. (Name rules
        are not looked at: the caller checks that none are configured.)"""
        inherited = parent.metadata
        get, had = metadata.get, inherited.get
        node = get(NODE_KEY)
        if node is not None and (node != had(NODE_KEY) or is_node_run(tags, metadata)):
            return False
        if get(AGENT_KEY) != had(AGENT_KEY):
            return False
        if not _EXPLICIT_META_SET.isdisjoint(metadata):  # one pass in C: usually none is set
            for meta_key in _EXPLICIT_META_KEYS:
                value = get(meta_key)
                if value is not None and value != had(meta_key):
                    return False
        parent_tags = parent.tags
        for tag in tags:
            if tag in parent_tags or not isinstance(tag, str):
                continue
            key, sep, _ = tag.partition(":")
            if sep and key in EXPLICIT_KEYS:
                return False
        return True

    def _named(self, value: object) -> str | None:
        name = clean(value)
        return name if name and name not in self.generic else None

    def resolve(self, run: Run, parent: Run | None) -> None:
        if (parent is not None and not self.has_rules and run.requested_by is None
                # An unknown persona stays unknown unless an agent or a node names the run.
                and (parent.persona != UNKNOWN
                     or (parent.agent is None and NODE_KEY not in run.metadata))
                and (parent.agent is None or parent.persona == parent.agent
                     or parent.persona_source is _EXPLICIT)
                and self.adds_nothing(run.tags, run.metadata, parent)):
            # The common case (a call inside a node or an agent, nothing new said): every
            # value is the parent's, as the full resolution below would find (the persona
            # would be the inherited explicit one, the parent's agent, or the parent's).
            run.agent = parent.agent
            run.persona = parent.persona
            run.persona_source = _INHERITED if parent.persona != UNKNOWN else _NONE
            run.stage, run.stage_source, run.stage_run = (parent.stage, _INHERITED,
                                                          parent.stage_run)
            run.workflow = parent.workflow
            scope = parent.extra.get("gate_scope")
            if scope:
                run.extra["gate_scope"] = scope
            run.execution, run.thread_id = parent.execution, parent.thread_id
            return
        node_run = run.is_node = is_node_run(run.tags, run.metadata)
        node = clean(run.metadata.get(NODE_KEY)) or ""
        if node_run and parent is not None:
            self._learn_graph(parent, node)
        run.agent = self._agent(run, parent, node_run)
        given = explicit(run.tags, run.metadata)
        # Only a value the parent's metadata also holds can be beaten by this run's own tag.
        if parent is not None and given and not _EXPLICIT_META_SET.isdisjoint(parent.metadata):
            self._own_tags_win(run, parent, given)
        self._persona(run, parent, node, given.get("persona"))
        self._stage(run, parent, node, node_run, given.get("stage"))
        self._workflow(run, parent, given.get("workflow"))
        self._gate(run, parent, node, given.get("gate"))
        if parent is None:
            thread = run.metadata.get(THREAD_KEY)
            # Any scalar id (str, int, UUID...), as LangGraph passes it through unchanged.
            run.thread_id = (str(thread)[:256] if thread is not None and not isinstance(
                thread, bool | Mapping | list | tuple | set | dict) else None)
            # Scoped by workflow: two apps in one process may both use thread "1".
            run.execution = (f"thread:{run.workflow}:{run.thread_id}" if run.thread_id
                             else str(run.run_id))
        else:
            run.execution, run.thread_id = parent.execution, parent.thread_id

    @staticmethod
    def _own_tags_win(run: Run, parent: Run, given: dict[str, str]) -> None:
        """Innermost wins: a tag this run adds beats metadata it merely inherited."""
        for key, meta_key in _META_KEYS:
            value = run.metadata.get(meta_key)
            if key not in given or value is None or value != parent.metadata.get(meta_key):
                continue
            inherited = set(parent.tags)
            own = explicit([t for t in run.tags if t not in inherited], {}).get(key)
            if own:
                given[key] = own

    def _learn_graph(self, graph: Run, node: str) -> None:
        """A node run starting tells us its parent is a graph; learn once whether it is an agent.

        A graph nested in another graph's node is a unit of work of its own (a sub-agent or a
        team): its name, or the hosting node's name when the graph's name is generic, becomes
        its agent name. A top-level graph is an agent only when its nodes are agent-internal
        (``agent``/``model``/``tools``), which tells ``create_react_agent(name=...)`` apart
        from a named workflow graph whose nodes are its stages.
        """
        if graph.is_graph or not node or node.startswith("__"):
            return
        graph.is_graph = True
        if NODE_KEY in graph.metadata:
            name = self._named(graph.name) or self._named(graph.metadata.get(NODE_KEY))
        else:
            name = self._named(graph.name) if node in self.generic else None
        if name:
            graph.agent = name
            # The graph run started before it was known to be an agent: it is that agent
            # (so its span/observation carries the persona), unless something stronger said
            # otherwise. Switches are not rewritten: its first node run makes the switch.
            if graph.persona_source in (_INHERITED, _NONE):
                graph.persona = self.personas.admit(self.agent_persona(name))
                graph.persona_source = _STRUCTURE

    def _agent(self, run: Run, parent: Run | None, node_run: bool) -> str | None:
        """Innermost named agent: the graph a node runs in, or a newly entered ``lc_agent_name``."""
        if node_run and parent is not None:
            return parent.agent
        declared = self._named(run.metadata.get(AGENT_KEY))
        if declared and (parent is None or parent.metadata.get(AGENT_KEY) != declared):
            return declared
        return parent.agent if parent is not None else None

    def _persona(self, run: Run, parent: Run | None, node: str, value: str | None) -> None:
        source = _EXPLICIT
        if value is None and self._persona_rules_on:
            candidates = Candidates(
                name=run.name,
                agent=run.agent or "",
                node=node,
                system_prompt=(run.system_prompt or "").lower(),
                tool=run.name if run.kind is _TOOL else "",
            )
            value, source = self.persona_rules.match(candidates), _RULE
        if value is None and run.requested_by:
            value, source = run.requested_by, _CALLER
        if value is None and run.agent:
            value, source = run.agent, _STRUCTURE
        if value is None and parent is not None and parent.persona != UNKNOWN:
            value, source = parent.persona, _INHERITED
        if (value is None and self.node_personas and node and run.kind is not _CHAIN
                and node not in self.generic and not node.startswith("__")):
            # The weakest signal: only the runs doing the work (LLM, tool, retriever calls)
            # take it, so a node that merely hosts a named agent or a rule-matched call never
            # acts (and switches) as itself, and a routing-only node is no persona at all.
            value, source = node, _NODE
        if value is None:
            return
        if parent is not None and source is not _INHERITED and value == parent.persona:
            run.persona = parent.persona
            run.persona_source = _INHERITED if parent.persona != UNKNOWN else _NONE
            return
        run.persona, run.persona_source = self.personas.admit(value), source

    def _stage(self, run: Run, parent: Run | None, node: str, node_run: bool,
               value: str | None) -> None:
        source = _EXPLICIT
        if value is None and self._stage_rules_on:
            value = self.stage_rules.match(Candidates(name=run.name, agent="", node=node))
            source = _RULE
        if value is None and node_run and "|" not in str(run.metadata.get(NAMESPACE_KEY, "")):
            # Only the outermost graph's nodes are stages; agent-internal nodes are not.
            value = node if node and node not in self.generic else run.agent
            source = _STRUCTURE
        inherited = parent.stage if parent is not None else UNKNOWN
        if value is None or value == inherited:
            if parent is not None:
                run.stage, run.stage_source, run.stage_run = (
                    parent.stage, _INHERITED, parent.stage_run
                )
            return
        run.stage, run.stage_source, run.stage_run = self.stages.admit(value), source, run

    def _workflow(self, run: Run, parent: Run | None, value: str | None) -> None:
        if value is not None:
            run.workflow = self.workflows.admit(value)
        elif parent is not None:
            run.workflow = parent.workflow
        else:
            run.workflow = self.workflows.admit(clean(run.name) or UNKNOWN)

    def _gate(self, run: Run, parent: Run | None, node: str, value: str | None) -> None:
        if value is None and self._gate_rules_on and run.kind in (_CHAIN, _TOOL):
            value = self.gate_rules.match(Candidates(name=run.name, agent="", node=node))
        inherited = parent.extra.get("gate_scope") if parent is not None else None
        if value is None:
            if inherited:
                run.extra["gate_scope"] = inherited
            return
        run.extra["gate_scope"] = value
        # Metadata, tags and node names are inherited by every child: a gate is counted
        # once, at the run that introduces it.
        if value != inherited:
            run.gate = self.gates.admit(value)

    def agent_persona(self, agent: str) -> str:
        """The persona an agent known only by name resolves to (configured rules, else itself)."""
        if self._persona_rules_on:
            found = self.persona_rules.match(Candidates(name=agent, agent=agent, node=agent))
            if found:
                return found
        return agent

    def model_label(self, model: str | None) -> str:
        return self.models.admit(clean(model) or UNKNOWN)

    def tool_label(self, name: str) -> str:
        return self.tools.admit(clean(name) or UNKNOWN)
