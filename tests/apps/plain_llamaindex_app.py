"""An ordinary LlamaIndex app: a two-agent AgentWorkflow and a query, offline. It knows
nothing about hypertool-callbacks (the zero-code tests run it unmodified)."""

import asyncio
import sys

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import PrivateAttr


class ScriptLLM(MockFunctionCallingLLM):
    """Plays a script; reports OpenAI-style usage like a real provider would."""

    script: list = []
    prompt_tokens: int = 0
    _at: int = PrivateAttr(default=0)

    @llm_chat_callback()
    async def achat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        step = self.script[self._at % len(self.script)]
        self._at += 1
        message = (ChatMessage(role="assistant", content=step) if isinstance(step, str) else
                   ChatMessage(role="assistant", blocks=[ToolCallBlock(
                       tool_call_id=f"c{self._at}", tool_name=step[0], tool_kwargs=step[1])]))
        return ChatResponse(message=message, raw={"model": "script-1", "usage": {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": 2}})


async def main() -> None:
    planner = FunctionAgent(name="planner", description="plans", streaming=False,
                            llm=ScriptLLM(script=[("handoff", {"to_agent": "coder",
                                                               "reason": "go"})],
                                          prompt_tokens=13))
    coder = FunctionAgent(name="coder", description="codes", streaming=False,
                          llm=ScriptLLM(script=["done"], prompt_tokens=17))
    team = AgentWorkflow(agents=[planner, coder], root_agent="planner")
    print("team:", await team.run(user_msg="build it"))
    index = VectorStoreIndex.from_documents([Document(text="hello")],
                                            embed_model=MockEmbedding(embed_dim=4))
    print("query:", index.as_query_engine(llm=MockLLM()).query("hi?"))
    print("langchain imported:", "langchain_core" in sys.modules)


asyncio.run(main())
