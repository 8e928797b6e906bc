"""An ordinary LangChain script that keeps running for a while after its call (so a test can
scrape the metrics endpoint hypertool serves for it). It never imports hypertool_callbacks."""

import sys
import time

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

usage = {"input_tokens": 21, "output_tokens": 2, "total_tokens": 23}
model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
model.invoke("hi", config={"tags": ["persona:scribe"]})
print("called", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
