"""Several questions at once with AsyncClient (the server batches them when
PASTURE_NUM_PARALLEL > 1, and queues them otherwise)."""

from __future__ import annotations

import asyncio
import os

from pasture.client import AsyncClient

MODEL = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")


async def ask(client: AsyncClient, question: str) -> str:
    reply = await client.chat(MODEL, messages=[{"role": "user", "content": question}],
                              options={"num_predict": 24})
    return f"{question} -> {reply.message.content.strip()}"


async def main() -> None:
    client = AsyncClient()
    questions = ["What is 2 + 2?", "Name a fruit.", "Say hello in French."]
    for answer in await asyncio.gather(*(ask(client, q) for q in questions)):
        print(answer)


asyncio.run(main())
