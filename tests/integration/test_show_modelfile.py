"""`show --modelfile` prints a Modelfile that recreates the model's settings, even values
Ollama's quoting cannot carry (written in Pasture's `<<EOF` form)."""

from __future__ import annotations

from pathlib import Path

import httpx

from pasture.client import Client
from tests.integration.conftest import MODEL
from tests.integration.test_adapter import rebase

SETTINGS = {
    "template": '{{ .System }}\n"""\n{{ .Prompt }}',  # a line that would end `"""…"""`
    "system": '  def f():\n      """Docstring."""\n      return "\x07bell"  \n',
    "license": ["MIT", "two\r\nlines, CRLF", "coder \U0001f468\u200d\U0001f4bb"],
    "messages": [{"role": "user", "content": '"quoted"'},
                 {"role": "assistant", "content": 'x"""\ny'}],
    "parameters": {"stop": ["\n\n", '"""', "<|im_end|>"], "temperature": 0.25, "top_k": 7},
}


def _settings(api: httpx.Client, name: str) -> dict[str, object]:
    shown = api.post("/api/show", json={"model": name}).json()
    return {key: shown.get(key) for key in ("template", "system", "license", "messages",
                                            "parameters")}


def test_the_printed_modelfile_recreates_every_setting(api: httpx.Client,
                                                         tmp_path: Path) -> None:
    client = Client(str(api.base_url))
    try:
        created = api.post("/api/create", json={"model": "odd", "from": MODEL, "stream": False,
                                                 **SETTINGS})
        assert created.json() == {"status": "success"}
        shown = client.show("odd").modelfile
        assert "\nTEMPLATE <<EOF\n" in shown and "\nSYSTEM <<EOF\n" in shown
        assert "\nPARAMETER temperature 0.25\n" in shown  # plain values stay plain

        client.create_from_modelfile("odd-again", rebase(shown, "odd", MODEL), tmp_path)
        again = _settings(api, "odd-again")
        assert again == _settings(api, "odd")
        assert again["system"] == SETTINGS["system"]
        assert again["messages"] == SETTINGS["messages"]
    finally:
        client.delete("odd")
        client.delete("odd-again")
