"""A TEMPLATE whose steps are each costly: refused within its budget, the loop never stalls.

The attack run's `{{ range 100000 }}{{ len (json $.Messages) }}{{ end }}` is five steps an
iteration; over a large conversation each iteration marshals all of it, and counted in
steps it rendered for 16 s against a 2 s budget. Charged by the text each call reads and
builds, it ends on the work budget with a 400, and renders in a worker meanwhile.
"""

from __future__ import annotations

from pasture.prompt.gotemplate.exec import MAX_WORK
from tests.loop_probe import STALL_LIMIT, LoopProbe
from tests.routes.conftest import Serve, Server

COSTLY = "{{ range 100000 }}{{ len (json $.Messages) }}{{ end }}"
REFUSAL = f"executing: template exceeds {MAX_WORK} characters of work"


def test_a_template_of_costly_steps_is_a_400_on_generate_and_chat(serve: Serve) -> None:
    conversation = [{"role": "user", "content": "a" * 20_000}] * 40

    async def scenario(server: Server) -> None:
        created = await server.post("/api/create", model="costly", stream=False,
                                    template=COSTLY, **{"from": "plain"})
        assert created.status_code == 200, created.text
        async with LoopProbe() as probe:
            generated = await server.post("/api/generate", model="plain", stream=False,
                                          prompt="a" * 800_000, template=COSTLY)
            chatted = await server.post("/api/chat", model="costly", stream=False,
                                        messages=conversation)
        for reply in (generated, chatted):
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"].endswith(REFUSAL)
        assert probe.wakeups > 0
        assert probe.worst < STALL_LIMIT

    serve(scenario)
