"""Workflow executions (a root run, or a LangGraph thread): who is acting, handoffs on their
way to their target node, and tool calls an LLM reply asked for. Bounded: past
``max_executions`` the least recently used execution is forgotten. Not thread-safe: the
tracker calls it under its lock."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from hypertool_callbacks.context.dispatch import Note
from hypertool_callbacks.context.inference import NODE_KEY, Resolver
from hypertool_callbacks.context.labels import clean
from hypertool_callbacks.context.records import Handoff, PersonaStint, PersonaSwitch
from hypertool_callbacks.context.runs import UNKNOWN, Run
from hypertool_callbacks.events import RunKind

_LLM = RunKind.LLM  # read once (an enum member read goes through a hook on Python 3.11)
_TOOL = RunKind.TOOL

_MAX_TOOL_REQUESTS = 256  # tool calls asked for but not started yet, per execution


@dataclass(slots=True)
class Execution:
    """Who is acting in one workflow execution."""

    persona: str | None = None
    since: float | None = None  # None between two invocations of the same thread
    workflow: str = UNKNOWN
    # Handoffs signalled but not yet landed, by target node name: the target's persona is
    # known only when its node starts (it may be renamed by a rule or an explicit persona).
    handoffs: dict[str, Handoff] = field(default_factory=dict)
    # Tool calls an LLM reply asked for, by tool call id: the tool run is that LLM's persona's.
    requests: dict[str, str] = field(default_factory=dict)


class Executions:
    def __init__(self, max_executions: int, resolver: Resolver) -> None:
        self._states: OrderedDict[str, Execution] = OrderedDict()
        self._max = max_executions
        self._resolver = resolver

    def __len__(self) -> int:
        return len(self._states)

    def pop(self, key: str) -> None:
        self._states.pop(key, None)

    def of(self, run: Run) -> Execution:
        """The run's execution, made the most recently used (created if new)."""
        state = self._states.get(run.execution)
        if state is None:
            if len(self._states) >= self._max:
                self._states.popitem(last=False)
            state = self._states[run.execution] = Execution(workflow=run.workflow)
        else:
            self._states.move_to_end(run.execution)
        return state

    def act(self, run: Run, now: float, now_ns: int, notes: list[Note]) -> None:
        """Switch rule: a run whose persona is known and differs from the acting one."""
        if run.is_node:
            handoff = self.land(run)
            if handoff is not None:
                notes.append(("on_handoff", handoff))
        if run.persona == UNKNOWN:
            return
        stage_run = run.stage_run
        # A stage's persona is the first one doing work in it (an LLM or tool call), not the
        # agent whose graph merely hosts the node that runs a sub-agent.
        if (stage_run is not None and stage_run.stage_persona is None
                and run.kind in (_LLM, _TOOL)):
            stage_run.stage_persona = run.persona
        state = self.of(run)
        if state.persona == run.persona:
            if state.since is None:
                state.since = now
            return
        if state.persona is not None:
            notes.append(("on_switch", PersonaSwitch(state.persona, run.persona, run.workflow,
                                                     run.execution, run, now_ns)))
            if state.since is not None:
                notes.append(("on_stint", PersonaStint(state.persona, state.workflow,
                                                       run.execution, now - state.since)))
        state.persona, state.since, state.workflow = run.persona, now, run.workflow

    def pause(self, root: Run, now: float, notes: list[Note]) -> None:
        """The root run of an execution ended: the acting persona's stint ends with it (a
        thread's next invocation starts a new one)."""
        state = self._states.get(root.execution)
        if state is not None and state.persona is not None and state.since is not None:
            notes.append(("on_stint", PersonaStint(state.persona, state.workflow, root.execution,
                                                   now - state.since)))
            state.since = None

    def requester(self, tool_call_id: str | None, parent: Run | None) -> str | None:
        """The persona of the LLM call whose reply asked for this tool call, if seen."""
        if tool_call_id is None or parent is None:
            return None
        state = self._states.get(parent.execution)
        return state.requests.pop(tool_call_id, None) if state is not None else None

    def remember_requests(self, run: Run, ids: tuple[str, ...]) -> None:
        requests = self.of(run).requests
        for call_id in ids:
            requests.pop(call_id, None)  # re-inserted last: a reused id goes to its newest asker
            if len(requests) >= _MAX_TOOL_REQUESTS:
                del requests[next(iter(requests))]
            requests[call_id] = run.persona

    def handoff(self, run: Run, target_name: str) -> None:
        """``run`` handed off to the node ``target_name``: pending until that node starts."""
        target = clean(target_name)
        # A plain node has no persona of its own (node personas go to the calls in it): it
        # hands off as the persona that worked in it, if any.
        sender = run.persona
        if sender == UNKNOWN and run.is_node and run.stage_run is run and run.stage_persona:
            sender = run.stage_persona
        # The Command a handoff tool returns travels up through the enclosing nodes: count the
        # handoff once, at the innermost run that made it. Only a persona hands off (never
        # 'unknown'), and only to another unit of work (never to 'tools', 'model', ...).
        done: set[str] = run.extra.get("handoffs_done") or set()
        if (not target or target in self._resolver.generic or sender == UNKNOWN
                or target == sender or target in done):
            return
        run.handoff_to = (*run.handoff_to, target)
        ancestor: Run | None = run
        while ancestor is not None:
            ancestor.extra.setdefault("handoffs_done", set()).add(target)
            ancestor = ancestor.parent
        state = self._states.get(run.execution)
        if state is not None:
            state.handoffs[target] = Handoff(sender, target, run.workflow, run)

    def land(self, run: Run) -> Handoff | None:
        """The node a pending handoff targets starts: the handoff, to the persona it runs as."""
        state = self._states.get(run.execution)
        if state is None or not state.handoffs or not run.is_node:
            return None
        pending = state.handoffs.pop(clean(run.metadata.get(NODE_KEY)) or "", None)
        if pending is None:
            return None
        # A node hosting a sub-agent has no persona of its own yet: name it like the agent.
        resolver = self._resolver
        to = run.persona if run.persona != UNKNOWN else resolver.agent_persona(
            pending.to_persona)
        if to == pending.from_persona:
            return None
        return replace(pending, to_persona=resolver.personas.admit(to))
