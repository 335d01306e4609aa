"""Issue #18 item 4 in a browser: an owner creates a webhook in project settings -> Automations, copies the
secret shown once, a prompt is created through the public API, and the delivery log shows the retried, signed
delivery. Real server process (both backends), real Chromium, real receiver (tests/webhook_receiver.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import Server, make_server
from tests.web.conftest import INIT_EMAIL, INIT_PASSWORD, Ui, ui_session
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver([500, 200]) as r:
        yield r


@pytest.fixture
def hook_server(tmp_path, backend) -> Iterator[Server]:
    srv = make_server(
        tmp_path,
        backend,
        LANGFUSE_INIT_USER_EMAIL=INIT_EMAIL,
        LANGFUSE_INIT_USER_PASSWORD=INIT_PASSWORD,
        ENCRYPTION_KEY="ab" * 32,
        LANGFUSE_WEBHOOK_WHITELISTED_IPS="127.0.0.1",
        LIGHTFUSE_WEBHOOK_POLL_SECONDS="0.2",
        LIGHTFUSE_WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hook_ui(chromium, hook_server, request) -> Iterator[Ui]:
    with ui_session(chromium, hook_server, request) as session:
        yield session


def test_create_webhook_see_secret_once_and_the_delivery_log(hook_ui: Ui, hook_server: Server, receiver):
    ui, project_id = hook_ui, hook_server.project_id
    page = ui.new_page()
    page.goto("/auth/sign-in")
    page.fill("input[name=email]", INIT_EMAIL)
    page.fill("input[name=password]", INIT_PASSWORD)
    page.click("form.stack button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))

    page.goto(f"/project/{project_id}/settings")
    page.click("text=Webhooks on prompt changes")
    expect(page).to_have_url(re.compile(r"/settings/automations$"))
    form = page.locator("[data-testid=create-automation]")
    form.locator("input[name=name]").fill("deploy hook")
    form.locator("input[name=url]").fill(receiver.url)
    form.locator("input[name=prompt_name]").fill("greeting")
    form.locator("button[type=submit]").click()
    secret = page.locator("[data-testid=webhook-secret]").inner_text().strip()
    assert secret.startswith("lf-whsec_")
    receiver.secret = secret
    ui.shot(page, "01-created")

    # shown once: a reload shows the masked form only
    page.goto(f"/project/{project_id}/settings/automations")
    expect(page.locator("[data-testid=webhook-secret]")).to_have_count(0)
    assert secret not in page.content()
    expect(page.locator("[data-automation]")).to_contain_text(secret[-4:])

    auth = (hook_server.public_key, hook_server.secret_key)
    body = {"name": "greeting", "type": "text", "prompt": "Hello {{name}}", "labels": ["production"]}
    r = httpx.post(f"{hook_server.url}/api/public/v2/prompts", json=body, auth=auth, timeout=10)
    assert r.status_code == 201, r.text
    other = {"name": "unrelated", "type": "text", "prompt": "x"}
    assert httpx.post(f"{hook_server.url}/api/public/v2/prompts", json=other, auth=auth).status_code == 201

    status = page.locator("[data-testid=delivery-status]")
    for _ in range(60):  # the daemon polls every 0.2 s; the retry is due 0.2 s after the 500
        page.goto(f"/project/{project_id}/settings/automations")
        if status.count() and status.first.inner_text() == "succeeded":
            break
        time.sleep(0.25)
    expect(status).to_have_count(1)  # the filter: "unrelated" sent nothing
    expect(status).to_have_text("succeeded")
    expect(page.locator("[data-testid=delivery-attempts]")).to_have_text("2")
    expect(page.locator("[data-testid=delivery-code]")).to_contain_text("200")
    expect(page.locator("[data-delivery]")).to_contain_text("greeting v1")
    ui.shot(page, "02-delivery-log")

    assert [q["status"] for q in receiver.requests] == [500, 200]
    assert all(q["verified"] for q in receiver.requests)
    event = receiver.requests[-1]["json"]
    assert (event["action"], event["prompt"]["name"], event["prompt"]["version"]) == (
        "created",
        "greeting",
        1,
    )
    assert sorted(event["prompt"]["labels"]) == ["latest", "production"]

    # send test from the page: queued, delivered by the daemon
    page.click("[data-testid=send-test]")
    receiver.wait_for(3)
    assert receiver.requests[-1]["json"]["prompt"]["name"] == "lightfuse-webhook-test"
