"""The chat page at `/ui` in a real browser: Debian's Chromium driven by Playwright.

Playwright (PyPI) drives the system Chromium that `scripts/install_system_deps.sh`
installs (`executable_path`), so nothing is downloaded at test time. One browser for the
module; each test gets a fresh browser context (its own storage). The page talks to the
shared session server with SmolLM2; generations are kept short with `num_predict`.
The static serving itself (types, CSP, traversal) is tests/routes/test_ui.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from tests.ggufs import write_tiny_llama
from tests.integration.conftest import (
    MODEL,
    VISION_IMAGE_TOKENS,
    RunningServer,
    import_model,
    start_server,
    stop_server,
)
from tests.integration.registry import (  # noqa: F401 - the fixture is used by name
    Registry,
    registry_fixture,
)

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
WAIT_MS = 60_000
STATS = re.compile(r"^\d+ tokens · \d+\.\d tokens/s · first token \d+ ms · prompt \d+ tokens$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = shutil.which("chromium")
    assert path, "chromium is not installed: run scripts/install_system_deps.sh"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text)
              if "Content Security Policy" in message.text else None)
    yield opened
    context.close()
    assert not errors, errors  # no uncaught exception in the page, no CSP violation


def by_id(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def open_page(page: Page, url: str) -> None:
    page.goto(url + "/ui")
    page.wait_for_selector("body[data-ready=true]")


def set_setting(page: Page, testid: str, value: str) -> None:
    if not by_id(page, testid).is_visible():
        by_id(page, "settings-toggle").click()
    by_id(page, testid).fill(value)


def send(page: Page, text: str) -> Locator:
    """Type `text`, press Enter, and return the answer's element."""
    before = by_id(page, "message-assistant").count()
    by_id(page, "prompt").fill(text)
    by_id(page, "prompt").press("Enter")
    answer = by_id(page, "message-assistant").nth(before)
    answer.wait_for()
    return answer


def running(server: RunningServer) -> int:
    models = httpx.get(server.url + "/api/ps", timeout=30).json()["models"]
    return sum(m.get("running") or 0 for m in models if m["name"] == MODEL)


def test_a_chat_streams_shows_stats_stops_and_survives_a_reload(
        server: RunningServer, page: Page, tmp_path: Path) -> None:
    open_page(page, server.url)
    # the shared server holds many models: pick ours
    assert any(MODEL in text for text in
               by_id(page, "model-select").locator("option").all_inner_texts())
    by_id(page, "model-select").select_option(MODEL)
    set_setting(page, "settings-temperature", "0")
    set_setting(page, "settings-num-predict", "24")
    by_id(page, "settings-toggle").click()

    # Every length the answer's text had while it streamed, seen by the page itself.
    page.evaluate("""() => {
        window.lengths = []
        new MutationObserver(() => {
            const answer = document.querySelector('[data-testid=message-assistant]')
            if (answer) window.lengths.push(answer.textContent.length)
        }).observe(document.getElementById('messages'), {subtree: true, childList: true,
                                                         characterData: true})
    }""")
    answer = send(page, "Write one sentence about the sea.")
    answer.locator("[data-testid=stats]").wait_for()
    assert answer.get_attribute("data-state") == "done"
    text = answer.locator("[data-testid=message-content]").inner_text()
    assert text.strip()
    assert len(set(page.evaluate("window.lengths"))) >= 3  # it grew part by part
    stats = answer.locator("[data-testid=stats]").inner_text()
    assert STATS.match(stats), stats
    assert 0 < int(stats.split()[0]) <= 24  # num_predict reached the server
    assert by_id(page, "message-user").inner_text() == "Write one sentence about the sea."
    screenshot(page, tmp_path)

    # A long answer, stopped with Esc: the page says so and the server stops generating.
    set_setting(page, "settings-num-predict", "4000")
    long = send(page, "Count from 1 to 1000, one number per line.")
    long.locator("[data-testid=message-content] >> text=/\\w/").wait_for()
    assert by_id(page, "stop").is_visible() and running(server) == 1
    page.keyboard.press("Escape")
    long.locator("[data-testid=stopped]").wait_for()
    assert long.locator("[data-testid=stats]").count() == 0
    deadline = time.monotonic() + 10
    while running(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(server) == 0
    assert by_id(page, "send").is_visible()
    by_id(page, "server-toggle").click()  # the loaded model, no request running or queued
    row = by_id(page, "ps-model").filter(has_text=MODEL)
    row.wait_for()
    assert row.locator("td").all_inner_texts()[4:6] == ["0", "0"]
    by_id(page, "server-toggle").click()
    stopped_text = long.locator("[data-testid=message-content]").inner_text()

    # Reload: the conversation, its settings and both answers are still there.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert by_id(page, "conversation-title").first.inner_text() \
        == "Write one sentence about the sea."
    assert by_id(page, "message-user").count() == 2
    answers = by_id(page, "message-assistant")
    assert answers.nth(0).locator("[data-testid=message-content]").inner_text() == text
    assert answers.nth(0).locator("[data-testid=stats]").inner_text() == stats
    assert answers.nth(1).locator("[data-testid=message-content]").inner_text() == stopped_text
    by_id(page, "settings-toggle").click()
    assert by_id(page, "settings-temperature").input_value() == "0"
    assert by_id(page, "model-defaults").inner_text().strip()

    # A new chat starts empty; the old one is still listed.
    by_id(page, "new-chat").click()
    assert by_id(page, "message-user").count() == 0
    assert by_id(page, "conversation").count() == 2


def screenshot(page: Page, folder: Path) -> None:
    """The page in a chat, for the README (PASTURE_UI_SCREENSHOT names the file)."""
    page.screenshot(path=str(folder / "ui-chat.png"))
    target = os.environ.get("PASTURE_UI_SCREENSHOT")
    if target:
        page.screenshot(path=target)


def store_conversation(page: Page, url: str, conversation: dict[str, object]) -> None:
    """Open the page with `conversation` as the only one in its storage."""
    page.goto(url + "/ui/")
    page.evaluate("c => { localStorage.setItem('pasture.ui.conversations', c); "
                  "localStorage.setItem('pasture.ui.current', JSON.parse(c)[0].id) }",
                  json.dumps([conversation]))
    page.reload()
    page.wait_for_selector("body[data-ready=true]")


def test_markdown_renders_code_and_model_html_stays_text(
        server: RunningServer, page: Page) -> None:
    answer = ("Here:\n\n```python\nprint('hi')\n```\n\n<script>window.ran = 1</script>"
              "<img src=x onerror=\"window.ran = 2\">\n\n"
              "A [link](javascript:window.ran=3) and <b onclick=\"window.ran=4\">bold</b>.")
    store_conversation(page, server.url, {
        "id": "c1", "title": "stored", "model": MODEL, "system": "", "temperature": "",
        "numCtx": "", "think": True, "updated": 1,
        "messages": [{"role": "user", "content": "show me"},
                     {"role": "assistant", "content": answer,
                      "thinking": "The user wants code.",
                      "tool_calls": [{"function": {"name": "get_weather",
                                                   "arguments": {"city": "Paris"}}}]}]})
    reply = by_id(page, "message-assistant")
    content = reply.locator("[data-testid=message-content]")
    assert content.locator("pre code").inner_text().strip() == "print('hi')"
    assert content.locator("pre [data-testid=copy-code]").count() == 1
    assert "<script>window.ran = 1</script>" in content.inner_text()
    assert content.locator("script, img").count() == 0
    assert content.locator("a").get_attribute("href") is None  # javascript: removed
    assert '<b onclick="window.ran=4">' in content.inner_text()
    content.locator("a").click()
    assert page.evaluate("window.ran") is None
    # Thinking is folded away until opened; a tool call shows as a call, not as text.
    thinking = reply.get_by_test_id("thinking")
    assert not thinking.get_by_text("The user wants code.").is_visible()
    thinking.locator("summary").click()
    assert thinking.get_by_text("The user wants code.").is_visible()
    assert reply.get_by_test_id("tool-call").inner_text() \
        == 'tool call get_weather({"city":"Paris"})'


def test_conversations_are_renamed_exported_and_deleted(
        server: RunningServer, page: Page) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    store_conversation(page, server.url, {
        "id": "c2", "title": "before", "model": MODEL, "system": "Be brief.",
        "temperature": "0.5", "numCtx": "", "think": True, "updated": 1,
        "messages": messages})
    page.once("dialog", lambda dialog: dialog.accept("after"))
    by_id(page, "conversation-rename").click()
    assert by_id(page, "conversation-title").inner_text() == "after"
    with page.expect_download() as download:
        by_id(page, "export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["title"] == "after" and exported["system"] == "Be brief."
    assert [(m["role"], m["content"]) for m in exported["messages"]] \
        == [(m["role"], m["content"]) for m in messages]
    page.once("dialog", lambda dialog: dialog.accept())
    by_id(page, "conversation-delete").click()
    assert by_id(page, "message-user").count() == 0  # a fresh, empty chat took its place
    assert by_id(page, "conversation-title").all_inner_texts() == ["New chat"]
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert "after" not in page.evaluate("localStorage.getItem('pasture.ui.conversations')")


def test_an_attached_image_reaches_a_vision_model(
        server: RunningServer, vision: str, page: Page, tmp_path: Path) -> None:
    from PIL import Image

    vision = f"{vision}:latest"  # as /api/tags lists it
    picture = tmp_path / "red.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(picture)
    open_page(page, server.url)
    by_id(page, "model-select").select_option(MODEL)
    assert by_id(page, "attach").is_disabled()  # a text model takes no images
    by_id(page, "model-select").select_option(vision)
    assert by_id(page, "attach").is_enabled()
    set_setting(page, "settings-num-predict", "2")
    page.locator("#image-input").set_input_files(str(picture))
    by_id(page, "attachment").wait_for()
    answer = send(page, "What is this?")
    stats = answer.locator("[data-testid=stats]")
    stats.wait_for()
    assert by_id(page, "message-user").locator("img").count() == 1
    assert by_id(page, "attachment").count() == 0  # sent with the message
    text_only = httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": vision, "stream": False, "options": {"num_predict": 2, "temperature": 0},
        "messages": [{"role": "user", "content": "What is this?"}]}).json()
    prompt_tokens = int(stats.inner_text().rsplit("prompt ", 1)[1].split()[0])
    assert prompt_tokens == text_only["prompt_eval_count"] + VISION_IMAGE_TOKENS


def test_the_page_fits_a_phone_and_follows_the_dark_theme(
        server: RunningServer, browser: Browser) -> None:
    light = browser.new_context(viewport={"width": 390, "height": 780}, color_scheme="light")
    dark = browser.new_context(viewport={"width": 390, "height": 780}, color_scheme="dark")
    backgrounds = []
    for context in (light, dark):
        phone = context.new_page()
        open_page(phone, server.url)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        for testid in ("prompt", "send", "model-select", "new-chat"):
            assert by_id(phone, testid).is_visible(), testid
        assert not by_id(phone, "conversation-list").is_visible()  # behind the ☰ button
        by_id(phone, "sidebar-toggle").click()
        assert by_id(phone, "conversation-list").is_visible()
        backgrounds.append(phone.evaluate("getComputedStyle(document.body).backgroundColor"))
        context.close()
    assert backgrounds[0] != backgrounds[1]


def test_pull_shows_progress_and_delete_asks_first(
        server: RunningServer, registry: Registry, page: Page,
        tmp_path: Path) -> None:
    local = "ui-pull-source"
    remote = f"{registry.host}/library/ui-pulled:latest"
    gguf = write_tiny_llama(tmp_path / "tiny.gguf", n_layers=1, n_embd=16, n_ff=32)
    import_model(server.url, gguf, local)
    with httpx.Client(base_url=server.url, timeout=60) as api:
        assert api.post("/api/copy", json={"source": local, "destination": remote}) \
            .status_code == 200
        pushed = api.post("/api/push", json={"model": remote, "insecure": True,
                                             "stream": False})
        assert pushed.status_code == 200, pushed.text
        for name in (local, remote):  # the blob goes with the last name using it
            assert api.request("DELETE", "/api/delete", json={"model": name}).status_code == 200

    open_page(page, server.url)
    page.evaluate("""() => {
        window.states = []
        const bar = document.querySelector('[data-testid=pull-progress]')
        new MutationObserver(() => window.states.push([bar.value, bar.max, bar.dataset.state]))
            .observe(bar, {attributes: true})
    }""")
    by_id(page, "models-toggle").click()
    by_id(page, "pull-name").fill(remote)
    by_id(page, "pull-insecure").check()
    by_id(page, "pull-start").click()
    page.wait_for_selector("[data-testid=pull-progress][data-state=done]")
    states = page.evaluate("window.states")
    assert any(state[1] > 1 for state in states), states  # a byte total was shown
    assert states[-1][0] == states[-1][1]  # full at the end
    assert by_id(page, "pull-status").inner_text() == f"{remote}: success"
    # the list is fetched again after the pull: wait for it (a long list takes a while)
    page.wait_for_function(
        "name => [...document.querySelectorAll('[data-testid=model-select] option')]"
        ".some(option => option.textContent.startsWith(name))", arg=remote)

    # Delete: dismissing the confirmation keeps the model; accepting removes it.
    item = by_id(page, "model-item").filter(has_text=remote)
    page.once("dialog", lambda dialog: dialog.dismiss())
    item.get_by_test_id("model-delete").click()
    assert item.count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_test_id("model-delete").click()
    item.wait_for(state="detached")
    names = [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]]
    assert remote not in names and MODEL in names


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("ui-keyed")
    running_server = start_server(root / "models", root / "log", PASTURE_API_KEYS="ui-key")
    yield running_server
    stop_server(running_server)


def test_with_api_keys_the_page_asks_for_the_key_then_works(
        keyed_server: RunningServer, page: Page) -> None:
    page.goto(keyed_server.url + "/ui")
    by_id(page, "key-dialog").wait_for()
    by_id(page, "api-key").fill("wrong-key")
    by_id(page, "api-key-save").click()
    by_id(page, "key-refused").wait_for()  # refused: asked again
    by_id(page, "api-key").fill("ui-key")
    by_id(page, "api-key-save").click()
    page.wait_for_selector("body[data-ready=true]")
    assert not by_id(page, "key-dialog").is_visible()
    by_id(page, "server-toggle").click()
    page.wait_for_selector("[data-testid=server-version] >> text=/^Pasture \\d/")
    assert page.evaluate("localStorage.getItem('pasture.ui.apiKey')") == "ui-key"
    page.reload()  # the stored key is used without asking
    page.wait_for_selector("body[data-ready=true]")
    assert not by_id(page, "key-dialog").is_visible()
