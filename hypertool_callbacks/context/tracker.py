"""The tracker: neutral run events in, enriched runs and derived facts out to the sinks.

One tracker is shared by every handler instance (LangChain constructs handlers freely), so all
state lives here, behind one lock. Sinks are called outside the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from uuid import UUID

from hypertool_callbacks.clock import Clock, SystemClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context import gates
from hypertool_callbacks.context.budget import BudgetBook, budget_execution, spent_budget
from hypertool_callbacks.context.cost import Pricer
from hypertool_callbacks.context.dispatch import Dispatcher, Note, close_all
from hypertool_callbacks.context.estimate import estimate_usage, mark_enclosing_llm, total_tokens
from hypertool_callbacks.context.executions import Executions
from hypertool_callbacks.context.gate_attempts import GateAttempts
from hypertool_callbacks.context.inference import NODE_KEY, Resolver, is_node_run
from hypertool_callbacks.context.labels import clean
from hypertool_callbacks.context.persona_hint import PersonaHint
from hypertool_callbacks.context.records import BudgetStatus
from hypertool_callbacks.context.runs import UNKNOWN, Run, RunTree, Status
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.errors import CostBudgetExceeded, TokenBudgetExceeded
from hypertool_callbacks.events import RunEnd, RunId, RunKind, RunStart, Usage
from hypertool_callbacks.safety import RateLimitedLog

# Enum members read once: on Python 3.11 ``RunKind.LLM`` goes through EnumType's
# __getattr__ hook, several times the cost of a module constant.
_CANCELLED = Status.CANCELLED
_ERROR = Status.ERROR
_EVICTED = Status.EVICTED
_LLM = RunKind.LLM
_OK = Status.OK
_REFUSED = Status.REFUSED
_TOOL = RunKind.TOOL


_log = logging.getLogger(__name__)
_NOTHING: Mapping[str, Any] = MappingProxyType({})  # start_run's metadata, parameters
_MAX_SWEEP_INTERVAL = 60.0  # seconds between two sweeps for runs past their TTL, at most



class Tracker:
    """Keeps the run tree and turns adapter events into sink calls.

    Example::

        tracker = Tracker(load_config(), sinks=[PrometheusSink(registry)])
        handler = HypertoolCallbackHandler(tracker)
    """

    def __init__(
        self,
        config: Config | None = None,
        sinks: Iterable[Sink] = (),
        clock: Clock | None = None,
    ) -> None:
        self.config = config or Config()
        self._warn = RateLimitedLog(_log)
        self._dispatch = Dispatcher(sinks, self.config.strict, self._warn)
        self._notify = self._dispatch.notify
        self.clock: Clock = clock or SystemClock()
        self.resolver = Resolver(self.config)
        self.verdicts = gates.Verdicts(self.config.gate_pass_words, self.config.gate_fail_words)
        self._gate_attempts = GateAttempts()
        self.budgets = BudgetBook(self.config.personas, self.config.max_executions)
        self.cost_budgets = BudgetBook(self.config.personas, self.config.max_executions, "usd")
        self.pricer = Pricer(self.config.prices)
        self._runs = RunTree(self.config.max_runs, self.config.run_ttl_seconds)
        self._live = self._runs.by_id  # the hot path reads the dict itself
        self._max_runs = self.config.max_runs
        # Folded runs (see fold()): their id -> the run they inherit everything from.
        self._aliases: dict[RunId, Run] = {}
        self._foldable = not self.resolver.has_rules  # name rules could match any run
        # Persona rules may match system prompts: only then must adapters extract them.
        self.reads_prompts = bool(self.resolver.persona_rules)
        self._executions = Executions(self.config.max_executions, self.resolver)
        self._lock = threading.Lock()
        # Sweeps ride on events (a start or an end, when due); the sweeper thread (sweeper.py)
        # calls evict_now() for trackers that stop receiving events.
        self._sweep_interval = min(_MAX_SWEEP_INTERVAL, self.config.run_ttl_seconds / 4)
        self._next_sweep = self.clock.monotonic() + self._sweep_interval
        self._hint = PersonaHint()  # one hint when most calls have persona 'unknown'
        limits = [*self.budgets.limits(), *self.cost_budgets.limits()]
        # No budget configured (the common case): no budget bookkeeping on any event.
        self._budgeted = bool(limits)
        for status in limits:
            self._notify([("on_budget", status)])

    # -- public API used by adapters -------------------------------------------------------

    def fold(self, run_id: RunId, parent_id: RunId | None, tags: Sequence[str],
             metadata: Mapping[str, Any]) -> bool:
        """The cheap path for a chain run inside another (a prompt template, a parser, a
        lambda; from LlamaIndex also a retriever or an embedding call: never an LLM or tool
        call) that would inherit everything from its parent and that no sink needs to see:
        remember it as an alias of its parent and return True; the adapter then builds no
        event for it, and ends it with :meth:`unfold`. False: start it as usual."""
        if parent_id is None or not self._foldable:
            return False
        if NODE_KEY in metadata and is_node_run(tags, metadata):
            return False  # a graph's node introduces its stage: never folds (no lock needed)
        if type(run_id) is UUID:
            run_id = run_id.int
        if type(parent_id) is UUID:
            parent_id = parent_id.int
        self._lock.acquire()  # not `with` (here and below): half its cost, paid per event
        try:
            parent = self._live.get(parent_id) or self._aliases.get(parent_id)
            if (parent is None or parent.end_mono is not None or run_id in self._aliases
                    or not self.resolver.adds_nothing(tags, metadata, parent)):
                return False
            table = parent.table
            # The tree's own sinks: one that declined it needs none of its runs.
            watchers = (table.run_watchers if table is not None and not table.stale
                        else self._dispatch.run_watchers)
            for needs_run in watchers:
                if needs_run(parent):
                    return False
            if len(self._aliases) >= self._max_runs:  # runs that never end: oldest go
                del self._aliases[next(iter(self._aliases))]
            self._aliases[run_id] = parent
        finally:
            self._lock.release()
        return True

    def unfold(self, run_id: RunId) -> bool:
        """End a folded run: True if ``run_id`` was one (nothing else to do for it)."""
        return self._aliases.pop(run_id.int if type(run_id) is UUID else run_id, None) is not None

    def start(self, event: RunStart) -> None:
        """Record a run start. Raises only :class:`TokenBudgetExceeded` (when configured)."""
        self.start_run(event.run_id, event.parent_id, event.kind, event.name, event.tags,
                       event.metadata, event.inputs, event.model, event.provider,
                       event.parameters, event.system_prompt, event.tool_call_id)

    def start_run(self, run_id: RunId, parent_id: RunId | None, kind: RunKind, name: str,
                  tags: Sequence[str] = (), metadata: Mapping[str, Any] = _NOTHING,
                  inputs: Any = None, model: str | None = None, provider: str | None = None,
                  parameters: Mapping[str, Any] = _NOTHING, system_prompt: str | None = None,
                  tool_call_id: str | None = None) -> None:
        """:meth:`start` with the fields of a :class:`RunStart` as arguments, in its order:
        the adapters' hot path (building the event object costs a tenth of a start)."""
        now_ns, now = self.clock.wall_ns(), self.clock.monotonic()
        notes: list[Note] = []
        spent: BudgetStatus | None = None
        live = self._live
        if type(run_id) is UUID:  # keyed by its int: UUID.__hash__ is Python code
            run_id = run_id.int
        if type(parent_id) is UUID:
            parent_id = parent_id.int
        self._lock.acquire()
        try:
            if run_id in live:
                notes.append(("on_drop", "duplicate_run"))
                run = None
            else:
                parent = (live.get(parent_id) or self._aliases.get(parent_id)
                          if parent_id is not None else None)
                if parent is not None and parent.end_mono is not None:
                    parent = None  # folded into a run that has ended since: events out of order
                if parent is None and parent_id:
                    # Parent never seen (handler attached mid-run) or evicted: a root now.
                    notes.append(("on_drop", "unknown_parent"))
                run = self._new_run(run_id, parent, kind, name, tags, metadata, now_ns, now,
                                    inputs, model, provider, parameters, system_prompt,
                                    tool_call_id)
                if run.is_node and self._gate_attempts.pending:
                    notes.extend(("on_gate", v) for v in self._gate_attempts.started(run))
                self._executions.act(run, now, now_ns, notes)
                if kind is _LLM and self._budgeted:
                    spent = spent_budget((self.budgets, self.cost_budgets), run, now,
                                         self.config.on_budget_exceeded, self._warn,
                                         notes)
                if (kind is _LLM or kind is _TOOL) and not self._hint.done:
                    self._hint.call(run.persona == UNKNOWN)
            swept = (self._sweep(now_ns, now)
                     if now >= self._next_sweep or len(live) > self._max_runs else None)
        finally:
            self._lock.release()
        if swept:  # runs of any tree: every sink hears them
            self._notify(swept)
        if run is None:
            self._notify(notes)
            return
        table = run.table
        if table is None:  # a root (children inherit): outside the lock, sinks may look around
            table = run.table = self._dispatch.table_for(run)
        if table.hears_starts:
            notes.insert(0, ("on_run_start", run))
        if notes:  # most starts under a metrics-only sink set: nothing to tell
            self._notify(notes, table)
        if spent is not None:
            refusal = CostBudgetExceeded if spent.unit == "usd" else TokenBudgetExceeded
            error = refusal(spent.persona, spent.limit, spent.used)
            self.end_run(run.run_id, None, error)
            raise error

    def end(self, event: RunEnd) -> None:
        self.end_run(event.run_id, event.outputs, event.error, event.usage,
                     event.response_model, event.handoffs, event.paused, event.cancelled,
                     event.tool_call_ids)

    def end_run(self, run_id: RunId, outputs: Any = None, error: BaseException | None = None,
                usage: Usage | None = None, response_model: str | None = None,
                handoffs: tuple[str, ...] = (), paused: bool = False,
                cancelled: bool = False, tool_call_ids: tuple[str, ...] = ()) -> None:
        """:meth:`end` with the fields of a :class:`RunEnd` as arguments, in its order."""
        now_ns, now = self.clock.wall_ns(), self.clock.monotonic()
        notes: list[Note] = []
        self._lock.acquire()
        try:
            run = self._live.pop(run_id.int if type(run_id) is UUID else run_id, None)
            if run is None:
                notes.append(("on_drop", "unknown_run"))
            else:
                try:
                    self._finish(run, outputs, error, usage, response_model, handoffs,
                                 paused, cancelled, tool_call_ids, now_ns, now, notes)
                except Exception as exc:  # e.g. an output object whose attributes raise
                    if self.config.strict:
                        raise
                    self._warn.warning("finish", "hypertool: ending a run failed: %r", exc)
                    notes.append(("on_internal_error", "tracker.finish"))
                    if ("on_run_end", run) not in notes:  # sinks must still close it
                        notes.append(("on_run_end", run))
            swept = self._sweep(now_ns, now) if now >= self._next_sweep else None
        finally:
            self._lock.release()
        if swept:
            self._notify(swept)
        if run is None:
            self._notify(notes)
            return
        if run.usage is not None and not run.usage_in_child:
            self._price(run, run.usage, now, notes)
        self._notify(notes, run.table)

    def first_token(self, run_id: RunId) -> None:
        self._lock.acquire()
        try:
            run = self._live.get(run_id.int if type(run_id) is UUID else run_id)
            if run is None or run.first_token_mono is not None:
                return
            run.first_token_mono = self.clock.monotonic()
            run.first_token_ns = self.clock.wall_ns()
        finally:
            self._lock.release()
        self._notify([("on_first_token", run)], run.table)

    def get_run(self, run_id: RunId) -> Run | None:
        self._lock.acquire()
        try:
            return self._live.get(run_id.int if type(run_id) is UUID else run_id)
        finally:
            self._lock.release()

    @property
    def live_runs(self) -> int:
        return len(self._runs)

    @property
    def live_executions(self) -> int:
        return len(self._executions)

    def evict_now(self) -> int:
        """Evict runs past their TTL now (normally done every few hundred starts)."""
        with self._lock:
            notes = self._evict(self.clock.wall_ns(), self.clock.monotonic())
        self._notify(notes)
        return sum(1 for method, _ in notes if method == "on_run_end")

    @property
    def sinks(self) -> list[Sink]:
        return self._dispatch.sinks

    def add_sink(self, sink: Sink) -> None:
        """Attach ``sink`` (once) for the events from now on (e.g. a recorder)."""
        with self._lock:
            if not any(s is sink for s in self.sinks):
                self._dispatch.replace([*self.sinks, sink])

    def remove_sink(self, sink: Sink) -> None:
        with self._lock:
            self._dispatch.replace([s for s in self.sinks if s is not sink])

    def dropped(self, reason: str) -> None:
        """An adapter saw an event it cannot use and made no run of it (e.g. a span handler
        registered twice hears each span twice): counted under ``reason``."""
        self._notify([("on_drop", reason)])

    def internal_error(self, component: str, exc: BaseException) -> None:
        """Adapters report their own failures here: counted, logged at most once a minute."""
        self._warn.warning(f"internal:{component}", "hypertool-callbacks: %s failed: %r",
                           component, exc)
        self._notify([("on_internal_error", component)])

    def shutdown(self, timeout: float = 5.0) -> None:
        """End runs still open (as evicted, so their spans are sent), then flush every sink.

        Sinks flush side by side, so ``timeout`` bounds the whole shutdown, not each sink (at
        exit: ``exit_flush_seconds``). A sink still sending at the limit, or one that used its
        whole share (it gave up), is named in one warning: what it had not sent is dropped.
        """
        with self._lock:
            notes = self._evict(self.clock.wall_ns(), self.clock.monotonic(), everything=True)
            self._hint.judge(final=True)
        self._notify(notes)
        close_all(self.sinks, timeout, self.clock, self._warn)

    def _price(self, run: Run, usage: Usage, now: float, notes: list[Note]) -> None:
        """Price an LLM call that counted usage. Outside the lock: the first call of a process
        loads the price data (a few hundred ms, once), and must not stall other threads."""
        try:
            run.cost = self.pricer.price(run.response_model, run.model, run.provider,
                                         usage, run.start_ns)
        except Exception as exc:
            if self.config.strict:
                raise
            self._warn.warning("cost", "hypertool: pricing an LLM call failed: %r", exc)
            notes.append(("on_internal_error", "cost"))
            return
        run.unpriced = run.cost is None
        if self._budgeted and run.cost is not None and run.persona != UNKNOWN:
            status = self.cost_budgets.consume(run.persona, budget_execution(run),
                                               run.cost.total_usd, now)
            if status is not None:
                notes.append(("on_budget", status))

    # -- internals (called with the lock held) ---------------------------------------------

    def _new_run(self, run_id: RunId, parent: Run | None, kind: RunKind, name: str,
                 tags: Sequence[str], metadata: Mapping[str, Any], now_ns: int, now: float,
                 inputs: Any, model: str | None, provider: str | None,
                 parameters: Mapping[str, Any], system_prompt: str | None,
                 tool_call_id: str | None) -> Run:
        # A child starts with its parent's dispatch table and trace id.
        table, trace_id = (None, None) if parent is None else (parent.table, parent.trace_id)
        # Positional: matching 15 keywords against Run's 46 parameters costs a third of
        # building it. The order is Run's field order.
        run = Run(run_id, parent, kind, clean(name) or str(kind), tags, metadata, now_ns, now,
                  inputs, model, provider, parameters, system_prompt, table, trace_id)
        if kind is _TOOL:
            run.requested_by = self._executions.requester(tool_call_id, parent)
        self.resolver.resolve(run, parent)
        if kind is _LLM:
            run.label = self.resolver.model_label(run.model)
        elif kind is _TOOL:
            run.label = self.resolver.tool_label(run.name)
        self._live[run_id] = run
        return run

    def _finish(self, run: Run, outputs: Any, error: BaseException | None, usage: Usage | None,
                response_model: str | None, handoffs: tuple[str, ...], paused: bool,
                cancelled: bool, tool_call_ids: tuple[str, ...], now_ns: int, now: float,
                notes: list[Note]) -> None:
        run.end_ns, run.end_mono = now_ns, now
        run.outputs, run.error = outputs, error
        run.status = (_REFUSED if isinstance(error, TokenBudgetExceeded)
                      else _ERROR if error is not None
                      else _CANCELLED if cancelled else _OK)
        run.response_model = response_model
        if run.kind is _LLM and run.label == UNKNOWN and response_model:
            run.label = self.resolver.model_label(response_model)
        if run.gate is not None and not (paused or cancelled):
            run.gate_result = self.verdicts(error, outputs)
        if run.kind is _LLM:
            if tool_call_ids and run.persona != UNKNOWN and error is None:
                self._executions.remember_requests(run, tool_call_ids)
            run.usage = usage or (estimate_usage(run.inputs, outputs)
                                  if self.config.estimate_missing_usage else None)
            if run.usage is not None:
                mark_enclosing_llm(run)
            if (self._budgeted and run.usage is not None and run.persona != UNKNOWN
                    and not run.usage_in_child):
                status = self.budgets.consume(run.persona, budget_execution(run),
                                              total_tokens(run.usage), now)
                if status is not None:
                    notes.append(("on_budget", status))
        notes.append(("on_run_end", run))
        if run.gate_result is not None or run.extra:  # held verdicts live in run.extra
            notes.extend(("on_gate", verdict) for verdict in self._gate_attempts.ended(run))
        # Tools hand off by name; a Command(goto=...) counts once, at the node that returned it.
        if handoffs and (run.kind is _TOOL or run.is_node):
            for target in handoffs:
                self._executions.handoff(run, target)
        if run.parent is None:
            self._end_execution(run, now, notes)

    def _end_execution(self, root: Run, now: float, notes: list[Note]) -> None:
        self._executions.pause(root, now, notes)
        if root.thread_id is None:  # keyed by the root run: it is over
            self._executions.pop(root.execution)
            if self._budgeted:
                self.budgets.end_execution(root.execution)
                self.cost_budgets.end_execution(root.execution)

    def _sweep(self, now_ns: int, now: float) -> list[Note]:
        """Evict what is due (checked inline by start/end: due every interval, or past the
        size bound)."""
        self._next_sweep = now + self._sweep_interval
        return self._evict(now_ns, now)

    def _evict(self, now_ns: int, now: float, everything: bool = False) -> list[Note]:
        notes: list[Note] = []
        # A folded run whose parent is over will never end: forget it.
        # (A copy: unfold() pops without the lock.)
        stale = [key for key, parent in list(self._aliases.items())
                 if everything or parent.end_mono is not None]
        for key in stale:
            self._aliases.pop(key, None)
        for run in self._runs.evict(float("inf") if everything else now):
            run.end_ns, run.end_mono, run.status = now_ns, now, _EVICTED
            notes.append(("on_drop", "evicted"))
            notes.append(("on_run_end", run))
            notes.extend(("on_gate", verdict) for verdict in self._gate_attempts.ended(run))
            if run.parent is None:
                self._end_execution(run, now, notes)
        return notes
