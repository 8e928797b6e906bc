"""An ordinary LangGraph app that knows nothing about hypertool-callbacks.

The zero-code tests run this file untouched in a subprocess; it must never import
hypertool_callbacks.
"""

from typing import TypedDict

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    text: str


def model(tokens_in: int, tokens_out: int) -> FakeMessagesListChatModel:
    usage = {"input_tokens": tokens_in, "output_tokens": tokens_out,
             "total_tokens": tokens_in + tokens_out}
    return FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])


writer_model = model(11, 7)
editor_model = model(5, 3)


def write(state: State) -> State:
    return {"text": str(writer_model.invoke("draft it").content)}


def edit(state: State) -> State:
    return {"text": str(editor_model.invoke("edit it").content)}


graph = StateGraph(State)
graph.add_node("write", write, metadata={"hypertool_persona": "writer"})
graph.add_node("edit", edit, metadata={"hypertool_persona": "editor"})
graph.add_edge(START, "write")
graph.add_edge("write", "edit")
graph.add_edge("edit", END)
app = graph.compile(name="newsroom")

if __name__ == "__main__":
    print(app.invoke({"text": ""}))
