"""Tags that are control tokens in the model's vocabulary reach the output parsers.

llama-server leaves control tokens out of the text it returns unless a request names
them in `preserved_tokens`; thinking tags such as Qwen 3's `<think>`, Mistral's
`[TOOL_CALLS]` and gpt-oss's channel tokens are such tokens. SmolLM2's vocabulary has
control tokens too (`<jupyter_text>` is token 12, `<jupyter_output>` token 14): a template
that uses them as thinking tags, and a grammar that makes the model write them, show the
thought arriving split from the answer.
"""

from __future__ import annotations

import httpx

from tests.integration.conftest import create_variant

TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ if .Thinking }}<jupyter_text>{{ .Thinking }}<jupyter_output>{{ end }}"
    "{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)
# Token 12, a short thought, token 14, a short answer (llguidance's `<[id]>` is a token).
GRAMMAR = ("%llguidance {}\n"
           "start: <[12]> /[a-z]{3,12}( [a-z]{3,12}){0,3}/ <[14]> /[A-Z][a-z]{2,12}/\n")


def test_control_token_thinking_tags_split_the_thought(api: httpx.Client) -> None:
    model = create_variant(api, "smollm2-control-tags", TEMPLATE)
    for stream in (False, True):
        with api.stream("POST", "/api/chat", json={
                "model": model, "think": True, "stream": stream, "grammar": GRAMMAR,
                "messages": [{"role": "user", "content": "Think, then answer in a word."}],
                "options": {"temperature": 0, "num_predict": 40}}) as response:
            assert response.status_code == 200, response.read()
            lines = [httpx.Response(200, content=line).json()
                     for line in response.iter_lines() if line]
        thinking = "".join(line["message"].get("thinking", "") for line in lines)
        content = "".join(line["message"]["content"] for line in lines)
        assert thinking and thinking.islower(), lines
        assert content and content[0].isupper() and "<jupyter" not in content + thinking
