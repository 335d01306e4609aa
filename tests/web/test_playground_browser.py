"""LLM connections and the playground in Debian's Chromium against a real server, on SQLite and Postgres.

The provider is tests/fake_llm.py (an OpenAI-compatible server streaming one word every 0.3 s). An owner adds
a connection in the settings (key shown masked), tests it, writes a message with a variable, runs two panes
side by side, sees the answer grow while it streams, finds the runs as traced generations with a cost, saves
the messages as new prompt versions and loads one back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import Server, make_server
from tests.fake_llm import FakeLlm
from tests.web.conftest import INIT_EMAIL, INIT_PASSWORD, Ui

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    fake = FakeLlm(token_delay=0.3).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def web_server(tmp_path, backend) -> Iterator[Server]:
    # the fake provider listens on 127.0.0.1, which the LLM allow-list must name
    srv = make_server(
        tmp_path,
        backend,
        LANGFUSE_INIT_USER_EMAIL=INIT_EMAIL,
        LANGFUSE_INIT_USER_PASSWORD=INIT_PASSWORD,
        ENCRYPTION_KEY="cd" * 32,
        LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS="127.0.0.1",
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def sign_in(page, email: str, password: str) -> None:
    page.goto("/auth/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form.stack button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))


def test_connection_settings_playground_streaming_and_save(ui: Ui, web_server, fake_llm):
    pid = web_server.project_id
    page = ui.new_page()
    sign_in(page, INIT_EMAIL, INIT_PASSWORD)

    page.goto(f"/project/{pid}/settings")
    page.click("[data-testid=llm-connections-link]")
    form = page.locator("[data-testid=llm-connection-form]")
    form.locator("input[name=provider]").fill("local-gateway")
    form.locator("select[name=adapter]").select_option("openai")
    form.locator("input[name=secretKey]").fill(fake_llm.api_key)
    form.locator("input[name=baseURL]").fill(fake_llm.base_url)
    form.locator("input[name=customModels]").fill("gpt-4o-mini")
    form.locator("input[name=withDefaultModels]").uncheck()
    form.locator("textarea[name=extraHeaders]").fill("X-Team: playground-tests")
    form.locator("button[type=submit]").click()
    row = page.locator("[data-provider=local-gateway]")
    expect(row).to_contain_text("..." + fake_llm.api_key[-4:])
    expect(row).to_contain_text("X-Team")
    assert fake_llm.api_key not in page.content()
    row.locator("[data-testid=test-connection]").click()
    expect(page.locator(".flash")).to_contain_text("Connection works")
    assert fake_llm.requests[-1]["headers"]["x-team"] == "playground-tests"
    ui.shot(page, "01-connections")

    page.goto(f"/project/{pid}/playground")
    page.locator("#pg-messages textarea").nth(1).fill("hello {{who}} from the browser tests")
    page.locator("[data-testid=variable]").fill("world")
    page.click("[data-testid=add-pane]")
    panes = page.locator("[data-testid=pane]")
    expect(panes).to_have_count(2)
    expect(panes.nth(0).locator(".pg-model")).to_have_value("gpt-4o-mini")
    panes.nth(1).locator("[data-param=temperature]").fill("0.5")
    page.click("[data-testid=run-all]")

    # the answer grows while the provider streams: some partial text is seen before the pane is done
    expected = "Echo: hello world from the browser tests"
    seen: list[str] = []
    deadline = time.monotonic() + 30
    for _ in range(600):
        text, state = page.evaluate(
            "() => { const p = document.querySelector('[data-testid=pane]');"
            " return [p.querySelector('[data-testid=output]').textContent, p.dataset.state || ''] }"
        )
        seen.append(text)
        if state == "done" or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)
    partial = [t for t in seen if t and t != expected]
    assert partial, f"no partial output seen: {seen[-3:]}"
    assert all(expected.startswith(t) for t in partial)
    for i in range(2):
        expect(panes.nth(i).locator("[data-testid=output]")).to_have_text(expected)
        expect(panes.nth(i).locator("[data-testid=status]")).to_contain_text("12 in / 7 out tokens")
    ui.shot(page, "02-playground")
    temperatures = sorted(str(r["body"].get("temperature")) for r in fake_llm.requests[-2:])
    assert temperatures == ["0.5", "None"]

    # both runs are traced generations with model, usage and a cost from the price table
    traces = httpx.get(f"{web_server.url}/api/public/traces?name=playground", auth=web_server.auth).json()
    assert traces["meta"]["totalItems"] == 2
    for trace in traces["data"]:
        full = httpx.get(f"{web_server.url}/api/public/traces/{trace['id']}", auth=web_server.auth).json()
        gen = full["observations"][0]
        assert gen["model"] == "gpt-4o-mini" and gen["usageDetails"]["output"] == 7
        assert gen["calculatedTotalCost"] > 0 and gen["output"] == expected
    with page.expect_navigation():
        panes.nth(0).locator("[data-testid=trace-link]").click()
    expect(page.locator("body")).to_contain_text("playground-generation")
    page.go_back()

    # save as a new prompt version (twice: versions 1 and 2), then load version 1 back
    page.goto(f"/project/{pid}/playground")
    page.locator("#pg-messages textarea").nth(1).fill("hi {{name}}")
    pane = page.locator("[data-testid=pane]").first
    pane.locator(".pg-save-name").fill("greeting")
    pane.locator("[data-testid=save-prompt]").click()
    expect(pane.locator("[data-testid=save-result]")).to_have_text("Saved as greeting version 1")
    pane.locator("[data-testid=save-prompt]").click()
    expect(pane.locator("[data-testid=save-result]")).to_have_text("Saved as greeting version 2")
    prompt = httpx.get(
        f"{web_server.url}/api/public/v2/prompts/greeting?version=1", auth=web_server.auth
    ).json()
    assert prompt["type"] == "chat" and prompt["prompt"][-1]["content"] == "hi {{name}}"
    assert prompt["config"]["model"] == "gpt-4o-mini"
    page.goto(f"/project/{pid}/playground")
    page.fill("#pg-prompt-name", "greeting")
    page.fill("#pg-prompt-version", "1")
    page.click("#pg-load-prompt")
    expect(page.locator("[data-testid=prompt-status]")).to_have_text("Loaded greeting version 1")
    expect(page.locator("#pg-messages textarea").nth(1)).to_have_value("hi {{name}}")
    expect(page.locator("[data-testid=variable]")).to_have_count(1)
