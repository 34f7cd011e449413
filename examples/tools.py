"""A tool-calling loop: the model asks for a function, we run it and send the result back.

SmolLM2 has no tool template of its own, so this first derives a model from it with a
Qwen-style Go TEMPLATE (`tools-template.gotmpl`); models from Ollama's library that
support tools already carry one. A 135M model rarely decides to call a tool by itself,
so the first turn uses Pasture's `tool_choice="required"`, which the server enforces.
"""

from __future__ import annotations

import os
from pathlib import Path

from pasture.client import Client

BASE = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")
MODEL = "smollm2-tools"


def add(a: int, b: int) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


client = Client()
template = (Path(__file__).parent / "tools-template.gotmpl").read_text()
client.create(MODEL, from_=BASE, template=template)

messages = [{"role": "user", "content": "What is 12 plus 30?"}]
reply = client.chat(MODEL, messages=messages, tools=[add], tool_choice="required",
                    options={"temperature": 0})
messages.append(reply.message)
for call in reply.message.tool_calls or []:
    result = add(**call.function.arguments)  # only `add` was offered
    print(f"model called {call.function.name}({call.function.arguments}) = {result}")
    messages.append({"role": "tool", "content": str(result), "tool_name": call.function.name})

final = client.chat(MODEL, messages=messages, tools=[add], tool_choice="none",
                    options={"num_predict": 40, "temperature": 0})
print(final.message.content)
client.delete(MODEL)
