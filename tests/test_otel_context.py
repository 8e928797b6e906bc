"""Root spans nest under the application's current span: sync, asyncio, thread pools."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from opentelemetry.sdk.trace import ReadableSpan

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink
from tests.fakes import reply
from tests.test_otel_support import Spans, attrs

N = 6


def _chain() -> Any:
    # ``sleep`` makes concurrent invocations overlap, so cross-talk would show.
    model = FakeMessagesListChatModel(responses=[reply("ok", tokens=(5, 1))], sleep=0.02)
    return ChatPromptTemplate.from_messages([("user", "{q}")]) | model


def _config(handler: HypertoolCallbackHandler, i: int) -> dict[str, Any]:
    return {"callbacks": [handler], "tags": [f"persona:p{i}"]}


def _assert_each_run_under_its_app_span(spans: Spans, count: int) -> None:
    for i in range(count):
        app = spans.named(f"app-{i}")
        [root] = spans.children(app)
        assert root.name == "invoke_workflow RunnableSequence"
        subtree = [root, *spans.descendants(root)]
        # prompt + LLM under the root; every span of the run carries this call's persona.
        assert len(subtree) == 3
        assert {attrs(s)["hypertool.persona"] for s in subtree} == {f"p{i}"}
        assert {s.context.trace_id for s in subtree} == {app.context.trace_id}
    apps = [spans.named(f"app-{i}") for i in range(count)]
    assert len({a.context.trace_id for a in apps}) == count


def test_sync_invoke_nests_under_the_current_span(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("app-0"):
        _chain().invoke({"q": "hi"}, config=_config(handler, 0))
    _assert_each_run_under_its_app_span(spans, 1)


def test_without_an_app_span_the_run_is_a_trace_root(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    _chain().invoke({"q": "hi"}, config=_config(handler, 0))
    root = spans.named("invoke_workflow RunnableSequence")
    assert root.parent is None
    assert len(spans.descendants(root)) == 2


async def test_concurrent_ainvoke_calls_nest_under_their_own_app_spans(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    chain = _chain()

    async def call(i: int) -> None:
        with tracer.start_as_current_span(f"app-{i}"):
            await asyncio.sleep(0.001 * (N - i))  # start in reverse order, then interleave
            await chain.ainvoke({"q": f"q{i}"}, config=_config(handler, i))

    await asyncio.gather(*(call(i) for i in range(N)))
    _assert_each_run_under_its_app_span(spans, N)


def test_thread_pool_calls_nest_under_their_own_app_spans(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    chain = _chain()

    def call(i: int) -> None:
        with tracer.start_as_current_span(f"app-{i}"):
            chain.invoke({"q": f"q{i}"}, config=_config(handler, i))

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(call, range(N)))
    _assert_each_run_under_its_app_span(spans, N)


def _batch_roots(spans: Spans, app: ReadableSpan) -> list[ReadableSpan]:
    roots = spans.children(app)
    assert {r.name for r in roots} == {"invoke_workflow RunnableSequence"}
    return roots


def test_langchain_batch_threads_keep_the_app_span(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("app"):
        _chain().batch([{"q": f"q{i}"} for i in range(4)], config={"callbacks": [handler]})
    app = spans.named("app")
    assert len(_batch_roots(spans, app)) == 4
    assert len(spans.descendants(app)) == 12


async def test_langchain_abatch_keeps_the_app_span(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("app"):
        await _chain().abatch([{"q": f"q{i}"} for i in range(4)], config={"callbacks": [handler]})
    app = spans.named("app")
    assert len(_batch_roots(spans, app)) == 4
    assert len(spans.descendants(app)) == 12


def test_sink_leaves_the_app_context_untouched(make_tracker: Callable[..., Tracker]) -> None:
    from opentelemetry import trace

    spans = Spans()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("app") as app:
        _chain().invoke({"q": "hi"}, config=_config(handler, 0))
        assert trace.get_current_span() is app
        with tracer.start_as_current_span("after") as after:
            pass
    assert after.parent is not None and after.parent.span_id == app.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN
