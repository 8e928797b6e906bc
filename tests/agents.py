"""Multi-agent scenarios: real LangGraph teams driven by scripted fake chat models, offline.

Every builder returns a freshly compiled graph with its own fake models. The fakes are stateful
(each call consumes the next scripted reply), so build one graph per run or per concurrent task.
The scripted token usage of each agent is in the ``*_TOKENS`` constants (persona -> (input,
output) for one run of the scenario), so tests can assert exact totals.

``on_tool`` hooks are called with the tool's name each time a scenario tool runs (tests use it to
advance a manual clock; a demo may sleep there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, create_react_agent
from langgraph.types import Command, Send
from langgraph_supervisor import create_supervisor
from langgraph_swarm import create_handoff_tool, create_swarm

from tests.fakes import ToolCallingFake, reply

Graph = CompiledStateGraph[Any, Any, Any, Any]
AgentKind = Literal["create_agent", "create_react_agent"]
AGENT_KINDS: tuple[AgentKind, ...] = ("create_agent", "create_react_agent")
ToolHook = Callable[[str], None]
Tokens = Mapping[str, tuple[int, int]]


def _noop(name: str) -> None:
    return None


def named_agent(kind: AgentKind, name: str | None, replies: Sequence[AIMessage],
                tools: list[BaseTool]) -> Graph:
    """One agent built the way apps build them: ``create_agent`` or ``create_react_agent``."""
    responses: list[BaseMessage] = list(replies)
    model = ToolCallingFake(responses=responses)
    if kind == "create_agent":
        return create_agent(model, tools, name=name)
    return create_react_agent(model, tools, name=name)


def work_tools(on_tool: ToolHook | None = None) -> dict[str, BaseTool]:
    """``search`` and ``write_draft``: ordinary tools that report each call to ``on_tool``."""
    hook = on_tool or _noop

    @tool
    def search(query: str) -> str:
        """Search the web."""
        hook("search")
        return f"3 sources about {query}"

    @tool
    def write_draft(text: str) -> str:
        """Write a draft."""
        hook("write_draft")
        return "draft saved"

    return {"search": search, "write_draft": write_draft}


# -- supervisor (langgraph-supervisor) --------------------------------------------------------

SUPERVISOR_TOKENS: Tokens = {"supervisor": (600, 6), "researcher": (50, 5), "writer": (90, 9)}


def supervisor_team(kind: AgentKind = "create_react_agent", *, on_tool: ToolHook | None = None,
                    name: str | None = None) -> Graph:
    """Supervisor -> researcher (one ``search``) -> supervisor -> writer (one ``write_draft``) ->
    supervisor answers. The supervisor makes 3 LLM calls, each agent 2."""
    tools = work_tools(on_tool)
    researcher = named_agent(kind, "researcher", [
        reply(calls=[("search", {"query": "agents"})], tokens=(20, 2)),
        reply("research done", tokens=(30, 3)),
    ], [tools["search"]])
    writer = named_agent(kind, "writer", [
        reply(calls=[("write_draft", {"text": "report"})], tokens=(40, 4)),
        reply("writing done", tokens=(50, 5)),
    ], [tools["write_draft"]])
    model = ToolCallingFake(responses=[
        reply(calls=[("transfer_to_researcher", {})], tokens=(100, 1)),
        reply(calls=[("transfer_to_writer", {})], tokens=(200, 2)),
        reply("all done", tokens=(300, 3)),
    ])
    workflow = create_supervisor([researcher, writer], model=model)
    return workflow.compile(name=name) if name else workflow.compile()


# -- swarm (langgraph-swarm) ------------------------------------------------------------------

# Per invocation of the same thread (the swarm keeps the active agent in the checkpoint).
SWARM_TOKENS_FIRST: Tokens = {"alice": (36, 6), "bob": (43, 3)}
SWARM_TOKENS_SECOND: Tokens = {"alice": (14, 4), "bob": (23, 3)}


def swarm_team(kind: AgentKind = "create_react_agent", *, on_tool: ToolHook | None = None,
               name: str = "pair") -> Graph:
    """Alice and Bob with ``transfer_to_<other>`` tools, an in-memory checkpointer; the compiled
    graph is called ``name`` (the workflow label).

    First invocation on a thread: alice searches, hands off to bob, bob writes and hands back,
    alice answers. Second invocation on the same thread: alice (still active) hands off to bob,
    bob answers.
    """
    tools = work_tools(on_tool)
    alice = named_agent(kind, "alice", [
        reply(calls=[("search", {"query": "agents"})], tokens=(11, 1)),
        reply(calls=[("transfer_to_bob", {})], tokens=(12, 2)),
        reply("alice final", tokens=(13, 3)),
        reply(calls=[("transfer_to_bob", {})], tokens=(14, 4)),
    ], [tools["search"], create_handoff_tool(agent_name="bob")])
    bob = named_agent(kind, "bob", [
        reply(calls=[("write_draft", {"text": "x"})], tokens=(21, 1)),
        reply(calls=[("transfer_to_alice", {})], tokens=(22, 2)),
        reply("bob final", tokens=(23, 3)),
    ], [tools["write_draft"], create_handoff_tool(agent_name="alice")])
    swarm = create_swarm([alice, bob], default_active_agent="alice")
    return swarm.compile(checkpointer=InMemorySaver(), name=name)


# -- agents nested in other agents' graphs ----------------------------------------------------

NESTED_TOKENS: Tokens = {"lead": (15, 7), "inner": (11, 3)}


def nested_agent_team(*, inner_metadata: dict[str, Any] | None = None,
                      on_tool: ToolHook | None = None) -> Graph:
    """A hand-built agent graph ``lead`` (nodes ``agent`` and ``inner``) whose ``inner`` node is
    a compiled ``create_agent(name="inner")``: lead plans, inner searches once and answers,
    lead answers. ``inner_metadata`` is given to ``add_node`` (e.g. an explicit persona)."""
    inner = named_agent("create_agent", "inner", [
        reply(calls=[("search", {"query": "x"})], tokens=(5, 1)),
        reply("inner done", tokens=(6, 2)),
    ], [work_tools(on_tool)["search"]])
    lead_model = ToolCallingFake(responses=[reply("plan", tokens=(7, 3)),
                                            reply("final", tokens=(8, 4))])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [lead_model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return END if any(getattr(m, "content", "") == "inner done"
                          for m in state["messages"]) else "inner"

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("inner", inner, metadata=inner_metadata)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["inner", END])
    graph.add_edge("inner", "agent")
    return graph.compile(name="lead")


AGENT_AS_TOOL_TOKENS: Tokens = {"lead": (15, 7), "expert": (11, 3)}


def agent_as_tool_team(*, on_tool: ToolHook | None = None) -> Graph:
    """``create_agent(name="lead")`` whose tool ``ask_expert`` invokes
    ``create_agent(name="expert")`` (which searches once): the expert runs inside lead's
    ``tools`` node."""
    expert = named_agent("create_agent", "expert", [
        reply(calls=[("search", {"query": "x"})], tokens=(5, 1)),
        reply("expert done", tokens=(6, 2)),
    ], [work_tools(on_tool)["search"]])

    @tool
    def ask_expert(question: str) -> str:
        """Ask the expert."""
        result = expert.invoke({"messages": [("user", question)]})
        return str(result["messages"][-1].content)

    return named_agent("create_agent", "lead", [
        reply(calls=[("ask_expert", {"question": "why?"})], tokens=(7, 3)),
        reply("final", tokens=(8, 4)),
    ], [ask_expert])


CODER_TESTER_TOKENS: Tokens = {"coder": (11, 3), "tester": (15, 7)}


def coder_tester_flow(*, on_tool: ToolHook | None = None) -> Graph:
    """A workflow graph ``dev_flow`` with two nodes, ``coder`` and ``tester``, each hosting an
    *unnamed* compiled agent (``create_react_agent`` and ``create_agent``, default name
    ``LangGraph``): coder writes once, tester searches once."""
    tools = work_tools(on_tool)
    coder = named_agent("create_react_agent", None, [
        reply(calls=[("write_draft", {"text": "code"})], tokens=(5, 1)),
        reply("coded", tokens=(6, 2)),
    ], [tools["write_draft"]])
    tester = named_agent("create_agent", None, [
        reply(calls=[("search", {"query": "tests"})], tokens=(7, 3)),
        reply("tested", tokens=(8, 4)),
    ], [tools["search"]])
    graph = StateGraph(MessagesState)
    graph.add_node("coder", coder)
    graph.add_node("tester", tester)
    graph.add_edge(START, "coder")
    graph.add_edge("coder", "tester")
    graph.add_edge("tester", END)
    return graph.compile(name="dev_flow")


# -- a single agent ---------------------------------------------------------------------------

SOLO_TOKENS: Tokens = {"solo": (11, 3)}


def solo_agent(kind: AgentKind = "create_agent", *, on_tool: ToolHook | None = None) -> Graph:
    """One named agent used alone: searches once, answers."""
    return named_agent(kind, "solo", [
        reply(calls=[("search", {"query": "x"})], tokens=(5, 1)),
        reply("done", tokens=(6, 2)),
    ], [work_tools(on_tool)["search"]])


# -- Command(goto=...) routing ----------------------------------------------------------------

COMMAND_TOKENS: Tokens = {"alice": (5, 1), "bob": (6, 2)}


def command_handoff_team() -> Graph:
    """Graph ``team`` with named agents ``alice`` and ``bob`` as nodes; alice hands off with a
    tool ``pass_to_bob`` (not named ``transfer_to_*``) returning
    ``Command(goto="bob", graph=Command.PARENT)``; bob answers."""

    @tool
    def pass_to_bob() -> Command[Any]:
        """Let Bob continue."""
        return Command(goto="bob", graph=Command.PARENT, update={"messages": []})

    alice = named_agent("create_agent", "alice", [
        reply(calls=[("pass_to_bob", {})], tokens=(5, 1)),
    ], [pass_to_bob])
    bob = named_agent("create_agent", "bob", [reply("bob done", tokens=(6, 2))], [])
    graph = StateGraph(MessagesState)
    graph.add_node("alice", alice, destinations=("bob",))
    graph.add_node("bob", bob)
    graph.add_edge(START, "alice")
    return graph.compile(name="team")


def triage_desk() -> Graph:
    """Graph ``desk``: a plain function node ``triage`` (no agent, no LLM) routes with
    ``Command(goto="alice")`` to the named agent ``alice``, which answers (5 in / 1 out)."""
    alice = named_agent("create_agent", "alice", [reply("alice done", tokens=(5, 1))], [])

    def triage(state: MessagesState) -> Command[Any]:
        return Command(goto="alice")

    graph = StateGraph(MessagesState)
    graph.add_node("triage", triage, destinations=("alice",))
    graph.add_node("alice", alice)
    graph.add_edge(START, "triage")
    return graph.compile(name="desk")


def command_routed_agent(*, on_tool: ToolHook | None = None) -> Graph:
    """A hand-built agent ``handmade`` (nodes ``agent`` and ``tools``) whose ``agent`` node
    routes with ``Command(goto="tools")`` (one ``search``), then answers: tokens (11, 3)."""
    model = ToolCallingFake(responses=[
        reply(calls=[("search", {"query": "x"})], tokens=(5, 1)),
        reply("done", tokens=(6, 2)),
    ])

    def agent(state: MessagesState) -> Command[Any]:
        message = model.invoke(state["messages"])
        return Command(goto="tools" if message.tool_calls else END,
                       update={"messages": [message]})

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent, destinations=("tools", END))
    graph.add_node("tools", ToolNode([work_tools(on_tool)["search"]]))
    graph.add_edge(START, "agent")
    graph.add_edge("tools", "agent")
    return graph.compile(name="handmade")


# -- a plain StateGraph whose nodes are roles -------------------------------------------------

ROLES_TOKENS: Tokens = {"planner": (10, 1), "coder": (50, 5), "reviewer": (30, 3)}


def role_graph(*, on_tool: ToolHook | None = None, tools_node: str = "tools") -> Graph:
    """Graph ``roles``: plain function nodes ``planner`` -> ``coder`` <-> ``tools_node`` (a
    ``ToolNode``; one ``search`` the coder's model asks for) -> ``reviewer``. No agent names,
    no tags, no configuration: the node names are the only hint of who works."""
    planner_model = ToolCallingFake(responses=[reply("plan", tokens=(10, 1))])
    coder_model = ToolCallingFake(responses=[
        reply(calls=[("search", {"query": "api"})], tokens=(20, 2)),
        reply("coded", tokens=(30, 3)),
    ])
    reviewer_model = ToolCallingFake(responses=[reply("PASS", tokens=(30, 3))])

    def planner(state: MessagesState) -> dict[str, Any]:
        return {"messages": [planner_model.invoke(state["messages"])]}

    def coder(state: MessagesState) -> dict[str, Any]:
        return {"messages": [coder_model.invoke(state["messages"])]}

    def reviewer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [reviewer_model.invoke(state["messages"])]}

    def after_coder(state: MessagesState) -> str:
        last = state["messages"][-1]
        return tools_node if getattr(last, "tool_calls", None) else "reviewer"

    graph = StateGraph(MessagesState)
    graph.add_node("planner", planner)
    graph.add_node("coder", coder)
    graph.add_node(tools_node, ToolNode([work_tools(on_tool)["search"]]))
    graph.add_node("reviewer", reviewer)
    graph.add_edge(START, "planner")
    graph.add_edge("planner", "coder")
    graph.add_conditional_edges("coder", after_coder, [tools_node, "reviewer"])
    graph.add_edge(tools_node, "coder")
    graph.add_edge("reviewer", END)
    return graph.compile(name="roles")


def fan_out_desk(*, send: bool = False) -> Graph:
    """Graph ``desk``: a plain node ``planner`` (one LLM call, 10 in / 1 out) routes with
    ``Command(goto=["coder", "reviewer"])`` (or two ``Send``\\ s) to two plain nodes that each
    make one LLM call (20/2 and 30/3) in parallel."""
    planner_model = ToolCallingFake(responses=[reply("split", tokens=(10, 1))])
    coder_model = ToolCallingFake(responses=[reply("coded", tokens=(20, 2))])
    reviewer_model = ToolCallingFake(responses=[reply("LGTM", tokens=(30, 3))])

    def planner(state: MessagesState) -> Command[Any]:
        message = planner_model.invoke(state["messages"])
        goto: Any = ([Send("coder", state), Send("reviewer", state)] if send
                     else ["coder", "reviewer"])
        return Command(goto=goto, update={"messages": [message]})

    def coder(state: MessagesState) -> dict[str, Any]:
        return {"messages": [coder_model.invoke(state["messages"])]}

    def reviewer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [reviewer_model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("planner", planner, destinations=("coder", "reviewer"))
    graph.add_node("coder", coder)
    graph.add_node("reviewer", reviewer)
    graph.add_edge(START, "planner")
    graph.add_edge("coder", END)
    graph.add_edge("reviewer", END)
    return graph.compile(name="desk")


def fan_out_team() -> Graph:
    """Graph ``team``: named agent ``alice`` hands off with a tool ``split`` returning
    ``Command(goto=["bob", "carol"], graph=Command.PARENT)``; named agents bob and carol
    answer (6/2 and 7/3); alice's call is 5/1."""

    @tool
    def split() -> Command[Any]:
        """Let Bob and Carol continue."""
        return Command(goto=["bob", "carol"], graph=Command.PARENT, update={"messages": []})

    alice = named_agent("create_agent", "alice", [reply(calls=[("split", {})], tokens=(5, 1))],
                        [split])
    bob = named_agent("create_agent", "bob", [reply("bob done", tokens=(6, 2))], [])
    carol = named_agent("create_agent", "carol", [reply("carol done", tokens=(7, 3))], [])
    graph = StateGraph(MessagesState)
    graph.add_node("alice", alice, destinations=("bob", "carol"))
    graph.add_node("bob", bob)
    graph.add_node("carol", carol)
    graph.add_edge(START, "alice")
    return graph.compile(name="team")
