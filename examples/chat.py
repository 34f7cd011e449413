"""Chat with a model, keeping the conversation: `python examples/chat.py`."""

from __future__ import annotations

import os

from pasture.client import Client

MODEL = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")

client = Client()  # PASTURE_HOST / OLLAMA_HOST, else 127.0.0.1:11434
messages = [{"role": "user", "content": "Name one colour of the rainbow."}]
reply = client.chat(MODEL, messages=messages, options={"num_predict": 32})
print(reply.message.content)

messages += [reply.message, {"role": "user", "content": "And another one?"}]
reply = client.chat(MODEL, messages=messages, options={"num_predict": 32})
print(reply.message.content)
print(f"({reply.eval_count} tokens in {reply.eval_duration / 1e9:.2f} s)")
