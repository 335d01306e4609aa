"""Prompt pages in Debian's Chromium against a real server process, on SQLite and Postgres.

Done-when of issue #18 item 1: a user with only a browser takes a prompt from first draft to ``production``
(create, new version, diff, label), and the real Python SDK (langfuse 5.x) then fetches that version by label.
An ADMIN protects ``production``; a MEMBER is refused moving it (403) but may move other labels.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, client_python
from tests.web.conftest import INIT_EMAIL, INIT_PASSWORD, Ui
from tests.web.helpers import event, iso
from tests.web.test_ui_browser import sign_in, sign_up

pytestmark = pytest.mark.slow
NAME = "support/greeting"


def sdk_fetch(server, name: str, label: str) -> dict:
    env = {
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_BASE_URL": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    script = ROOT / "tests" / "clients" / "scripts" / "prompt_by_label.py"
    out = subprocess.run(
        [client_python("langfuse5"), str(script), name, label],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_draft_to_production_then_the_sdk_fetches_it(ui: Ui, web_server):
    pid = web_server.project_id
    page = ui.new_page()
    sign_in(page, INIT_EMAIL, INIT_PASSWORD)

    # first draft, in a folder, with a variable and a config
    page.goto(f"/project/{pid}/prompts")
    ui.shot(page, "01-empty-list")
    page.click("[data-testid=new-prompt]")
    page.fill("[data-testid=prompt-name-input]", NAME)
    page.fill("[data-testid=prompt-text]", "Hello {{name}}!")
    expect(page.locator("[data-testid=variables]")).to_contain_text("name")
    page.fill("[data-testid=prompt-config-input]", '{"model": "gpt-4o"')
    expect(page.locator("[data-json-status]")).to_have_class(re.compile("bad"))
    page.fill("[data-testid=prompt-config-input]", '{"model": "gpt-4o", "temperature": 0}')
    expect(page.locator("[data-json-status]")).to_have_text("valid JSON object")
    page.fill("[data-testid=commit-input]", "first draft")
    ui.shot(page, "02-editor")
    page.click("[data-testid=save-prompt]")
    expect(page.locator("[data-testid=prompt-name]")).to_have_text("greeting")
    expect(page.locator("[data-testid=prompt-content] mark.var")).to_have_text("{{name}}")

    # an edit: a new version from the current one
    page.click("[data-testid=new-version]")
    page.fill("[data-testid=prompt-text]", "Hi {{name}}, welcome to {{shop}}.")
    page.fill("[data-testid=prompt-config-input]", '{"model": "gpt-4o", "temperature": 0.3}')
    page.fill("[data-testid=commit-input]", "warmer greeting")
    page.click("[data-testid=save-prompt]")
    expect(page.locator("[data-testid=commit-message]")).to_contain_text("warmer greeting")
    expect(page.locator("[data-testid=versions] li")).to_have_count(2)
    ui.shot(page, "03-prompt-v2")

    # the diff between the two versions
    page.click("[data-testid=compare]")
    expect(page.locator("[data-testid=diff-prompt] tr.d-change")).to_have_count(1)
    expect(page.locator("[data-testid=diff-prompt] tr.d-change td.r")).to_contain_text("welcome to")
    expect(page.locator("[data-testid=diff-config] tr.d-change")).to_contain_text("0.3")
    ui.shot(page, "04-diff")

    # the list shows the folder, then the prompt inside it
    page.goto(f"/project/{pid}/prompts")
    page.click("[data-folder=support] a")
    expect(page.locator(f"[data-prompt='{NAME}']")).to_contain_text("2")
    ui.shot(page, "05-folder")

    # protect production (OWNER), then a MEMBER is refused moving it
    page.goto(f"/project/{pid}/settings/prompts")
    page.fill("[data-testid=protect-form] input[name=label]", "production")
    page.click("[data-testid=protect-form] button")
    expect(page.locator("[data-testid=protected-labels]")).to_contain_text("production")

    member = ui.new_page()
    sign_up(member, "writer@example.com")
    page.goto("/organization/org-test/settings")
    page.fill("[data-testid=add-member] input[name=email]", "writer@example.com")
    page.select_option("[data-testid=add-member] select[name=role]", "MEMBER")
    page.click("[data-testid=add-member] button")
    expect(page.locator("[data-testid=members]")).to_contain_text("writer@example.com")

    ui.expect_statuses(403)
    member.goto(f"/project/{pid}/prompts/{NAME}?version=2")
    member.check("[data-testid=label-check-production]")
    member.click("[data-testid=save-labels]")
    expect(member.locator("body")).to_contain_text("protected")
    ui.shot(member, "06-member-refused")
    member.goto(f"/project/{pid}/prompts/{NAME}?version=2")
    member.fill("input[name=new_labels]", "staging")
    member.click("[data-testid=save-labels]")
    expect(member.locator("[data-testid=label-staging]")).to_be_visible()

    # the OWNER promotes version 2 to production
    page.goto(f"/project/{pid}/prompts/{NAME}?version=2")
    page.check("[data-testid=label-check-production]")
    page.click("[data-testid=save-labels]")
    expect(page.locator("[data-testid=label-production]")).to_be_visible()
    ui.shot(page, "07-production")

    got = sdk_fetch(web_server, NAME, "production")
    assert got["version"] == 2 and not got["is_fallback"]
    assert got["prompt"] == "Hi {{name}}, welcome to {{shop}}."
    assert got["compiled"] == "Hi Ada, welcome to Lightfuse."
    assert got["config"] == {"model": "gpt-4o", "temperature": 0.3}
    assert "production" in got["labels"] and "staging" in got["labels"]


def test_chat_editor_placeholders_references_and_metrics(ui: Ui, web_server):
    pid = web_server.project_id
    auth = (web_server.public_key, web_server.secret_key)
    r = httpx.post(
        f"{web_server.url}/api/public/v2/prompts",
        json={"name": "snippets/tone", "prompt": "Answer briefly.", "labels": ["production"]},
        auth=auth,
    )
    assert r.status_code == 201, r.text
    page = ui.new_page()
    sign_in(page, INIT_EMAIL, INIT_PASSWORD)
    page.goto(f"/project/{pid}/prompt-editor")
    page.fill("[data-testid=prompt-name-input]", "bots/support")
    page.check("[data-testid=type-chat]")
    rows = page.locator(".msg-edit")
    rows.nth(0).locator("textarea").fill(
        "You help {{customer}}. @@@langfusePrompt:name=snippets/tone|label=production@@@"
    )
    page.click("[data-testid=add-message]")
    rows.nth(1).locator("select").select_option("placeholder")
    rows.nth(1).locator("textarea").fill("history")
    page.click("[data-testid=add-message]")
    rows.nth(2).locator("input").fill("user")
    rows.nth(2).locator("textarea").fill("{{question}}")
    expect(page.locator("[data-testid=variables]")).to_contain_text("customer")
    expect(page.locator("[data-testid=variables]")).to_contain_text("question")
    page.check("[data-testid=set-production]")
    ui.shot(page, "01-chat-editor")
    page.click("[data-testid=save-prompt]")
    expect(page.locator("[data-testid=prompt-content] .msg")).to_have_count(3)
    expect(page.locator("[data-testid=prompt-content] mark.ph")).to_have_text("{{history}}")
    expect(page.locator("[data-testid=references]")).to_contain_text("snippets/tone v1")
    expect(page.locator("[data-testid=resolved-content]")).to_contain_text("Answer briefly.")

    # generations that used version 1, with a score on their traces
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    batch = []
    for i, ms in enumerate((800, 1200, 1000)):
        t0, t1 = iso(now + dt.timedelta(seconds=i)), iso(now + dt.timedelta(seconds=i, milliseconds=ms))
        batch += [
            event("trace-create", {"id": f"chat-{i}", "timestamp": t0, "name": "support"}, t0),
            event(
                "generation-create",
                {
                    "id": f"chat-{i}-g",
                    "traceId": f"chat-{i}",
                    "name": "llm",
                    "model": "gpt-4o",
                    "startTime": t0,
                    "endTime": t1,
                    "promptName": "bots/support",
                    "promptVersion": 1,
                    "usageDetails": {"input": 300 + i, "output": 40},
                },
                t0,
            ),
            event(
                "score-create",
                {"id": f"chat-{i}-s", "traceId": f"chat-{i}", "name": "helpful", "value": 1},
                t0,
            ),
        ]
    r = httpx.post(f"{web_server.url}/api/public/ingestion", json={"batch": batch}, auth=auth)
    assert r.status_code == 207 and r.json()["errors"] == [], r.text
    page.goto(f"/project/{pid}/prompts/bots/support")
    expect(page.locator("[data-testid=generations-1]")).to_have_text("3")
    expect(page.locator("[data-testid=metrics]")).to_contain_text("helpful: 1")
    ui.shot(page, "02-chat-prompt-metrics")
