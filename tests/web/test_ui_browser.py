"""The web UI in a real browser against a real server process, on SQLite and Postgres.

A new user signs up, creates an organisation, a project and an API key in the UI, sends traces through the
public ingestion API with that key, and then finds, filters, pages through and opens them. A VIEWER is
refused key creation; a user of another organisation gets 404 on the project's URLs.
"""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import INIT_EMAIL, INIT_PASSWORD, Ui
from tests.web.helpers import bulk_traces, checkout_trace

pytestmark = pytest.mark.slow


def sign_up(page, email: str, password: str = "password-123", name: str = "") -> None:
    page.goto("/auth/sign-up")
    page.fill("input[name=name]", name or email.split("@")[0])
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))


def sign_in(page, email: str, password: str) -> None:
    page.goto("/auth/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form.stack button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))


def rows(page) -> int:
    return page.locator("[data-testid=trace-row]").count()


def apply_filters(page, **fields: str) -> None:
    for name, value in fields.items():
        if name == "level":
            page.select_option("[data-testid=filter-level]", value)
        elif name == "limit":
            page.select_option("[data-testid=filter-limit]", value)
        else:
            page.fill(f"#trace-filters [name={name}]", value)
    with page.expect_response(lambda r: "/traces?" in r.url):
        page.click("[data-testid=apply-filters]")


def test_sign_up_create_project_ingest_and_explore(ui: Ui, web_server):
    page = ui.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    ui.shot(page, "01-sign-in")
    sign_up(page, "newcomer@example.com", name="Newcomer")
    expect(page.locator(".flash")).to_contain_text("Welcome")

    page.fill("input[name=name]", "Acme")
    page.click("text=Create organisation")
    expect(page.locator("h1")).to_contain_text("Acme")
    page.fill("input[name=name]", "Shop Bot")
    page.click("text=Create project")
    expect(page).to_have_url(re.compile(r"/project/[^/]+/settings$"))
    project_id = page.url.split("/project/")[1].split("/")[0]

    page.fill("[data-testid=create-key] input[name=note]", "e2e")
    page.click("[data-testid=create-key] button")
    public_key = page.locator("[data-testid=new-public-key]").inner_text()
    secret_key = page.locator("[data-testid=new-secret-key]").inner_text()
    assert public_key.startswith("pk-lf-") and secret_key.startswith("sk-lf-")
    ui.shot(page, "02-api-key-created")
    # the secret is shown once: a reload lists only the display form
    page.goto(f"/project/{project_id}/settings")
    expect(page.locator("[data-testid=api-keys]")).to_contain_text(public_key)
    expect(page.locator("[data-testid=api-keys]")).not_to_contain_text(secret_key)

    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    batch = checkout_trace("trace-checkout", now) + bulk_traces(23, now)
    r = httpx.post(
        f"{web_server.url}/api/public/ingestion", json={"batch": batch}, auth=(public_key, secret_key)
    )
    assert r.status_code == 207 and r.json()["errors"] == [], r.text

    # the table
    page.goto(f"/project/{project_id}/traces")
    expect(page.locator("[data-testid=page-info]")).to_contain_text("24 traces")
    expect(page.locator("[data-trace-id=trace-checkout]")).to_contain_text("checkout-flow")
    ui.shot(page, "03-traces")

    apply_filters(page, name="checkout-flow")
    expect(page.locator("[data-testid=trace-row]")).to_have_count(1)
    assert "name=checkout-flow" in page.url  # the filter is in the address (shareable, back button works)
    apply_filters(page, name="", level="ERROR")
    expect(page.locator("[data-testid=trace-row]")).to_have_count(1)
    apply_filters(page, level="", tags="bulk", meta="batch=yes", limit="10")
    expect(page.locator("[data-testid=page-info]")).to_contain_text("Page 1 of 3")
    assert rows(page) == 10
    page.click("[data-testid=next-page]")
    expect(page.locator("[data-testid=page-info]")).to_contain_text("Page 2 of 3")
    page.click("[data-testid=next-page]")
    expect(page.locator("[data-testid=page-info]")).to_contain_text("Page 3 of 3")
    assert rows(page) == 3
    ui.shot(page, "04-filtered-page-3")
    apply_filters(page, tags="", meta="", q="BULK-JOB-07")
    expect(page.locator("[data-testid=trace-row]")).to_have_count(1)
    apply_filters(page, q="", user="alice")
    expect(page.locator("[data-testid=trace-row]")).to_have_count(1)
    apply_filters(page, user="")
    page.click("[data-testid=sort-latency]")
    expect(page.locator("[data-testid=trace-row]").first).to_have_attribute("data-trace-id", "trace-checkout")

    # one trace: tree, timeline, observation panel
    page.click("[data-trace-id=trace-checkout] [data-testid=trace-name]")
    expect(page.locator("[data-testid=trace-title]")).to_have_text("checkout-flow")
    expect(page.locator("[data-testid=tree-node]")).to_have_count(4)
    expect(page.locator("[data-testid=timeline-bar]")).to_have_count(4)
    expect(
        page.locator("[data-testid=trace-panel] ~ [data-testid=io-input] [data-testid=chat]")
    ).to_be_visible()
    ui.shot(page, "05-trace")
    page.click("[data-obs-id=trace-checkout-llm]")
    panel = page.locator("[data-testid=observation-panel]")
    expect(panel).to_have_attribute("data-obs-id", "trace-checkout-llm")
    expect(page.locator("[data-testid=obs-model]")).to_have_text("gpt-4o")
    expect(page.locator("[data-testid=io-input] .msg[data-role=user]")).to_contain_text("order #1234")
    expect(page.locator("[data-testid=io-output] details.fold")).to_have_count(1)  # long text is folded
    ui.shot(page, "06-generation")
    page.click("[data-obs-id=trace-checkout-tool]")
    expect(page.locator("[data-testid=observation-error]")).to_contain_text("order service timed out")
    expect(page.locator("[data-testid=io-input] .json-tree")).to_contain_text("orderId")

    # sessions, users, dashboard, deep link
    page.goto(f"/project/{project_id}/sessions")
    page.click("[data-testid=session-row] a")
    expect(page.locator("[data-testid=session-trace]")).to_have_count(1)
    page.goto(f"/project/{project_id}/users")
    expect(page.locator("[data-testid=user-row]")).to_have_count(2)
    page.click("text=bob")
    expect(page.locator("[data-testid=page-info]")).to_contain_text("23 traces")
    page.goto(f"/project/{project_id}")
    expect(page.locator("[data-testid=stat-traces]")).to_have_text("24")
    expect(page.locator("[data-testid=chart-traces] canvas").first).to_be_visible()
    expect(page.locator("[data-testid=chart-models] canvas").first).to_be_visible()
    expect(page.locator("[data-testid=models-table]")).to_contain_text("gpt-4o-mini")
    ui.shot(page, "07-dashboard")
    page.goto("/trace/trace-checkout")
    expect(page).to_have_url(re.compile(f"/project/{project_id}/traces/trace-checkout$"))

    page.click("[data-testid=sign-out]")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    page.goto(f"/project/{project_id}/traces")
    expect(page).to_have_url(re.compile(r"/auth/sign-in\?next="))


def test_viewer_is_refused_and_outsiders_get_404(ui: Ui, web_server):
    ui.expect_statuses(403, 404)
    project_id = web_server.project_id
    now = dt.datetime.now(dt.UTC)
    r = httpx.post(
        f"{web_server.url}/api/public/ingestion",
        json={"batch": checkout_trace("t-rbac", now)},
        auth=web_server.auth,
    )
    assert r.status_code == 207

    owner = ui.new_page()
    sign_in(owner, INIT_EMAIL, INIT_PASSWORD)  # the LANGFUSE_INIT_USER
    expect(owner.locator("[data-testid=org-card]")).to_contain_text("Test Project")

    viewer = ui.new_page()
    sign_up(viewer, "viewer@example.com")
    outsider = ui.new_page()
    sign_up(outsider, "outsider@example.com")
    outsider.fill("input[name=name]", "Other Org")
    outsider.click("text=Create organisation")

    owner.goto("/organization/org-test/settings")
    owner.fill("[data-testid=add-member] input[name=email]", "viewer@example.com")
    owner.select_option("[data-testid=add-member] select[name=role]", "VIEWER")
    owner.click("[data-testid=add-member] button")
    expect(owner.locator("[data-member='viewer@example.com']")).to_contain_text("VIEWER")
    ui.shot(owner, "01-members")

    # the viewer reads traces but gets no key form, and a forged POST is refused
    viewer.goto(f"/project/{project_id}/traces/t-rbac")
    expect(viewer.locator("[data-testid=tree-node]")).to_have_count(4)
    expect(viewer.locator("[data-testid=delete-trace]")).to_have_count(0)
    viewer.goto(f"/project/{project_id}/settings")
    expect(viewer.locator("[data-testid=create-key]")).to_have_count(0)
    ui.shot(viewer, "02-viewer-settings")
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = viewer.request.post(
        f"/project/{project_id}/settings/api-keys", form={"csrf_token": token, "note": "x"}
    )
    assert refused.status == 403
    refused = viewer.request.post(f"/project/{project_id}/traces/t-rbac/delete", form={"csrf_token": token})
    assert refused.status == 403
    # without the token even the owner's browser is refused
    assert owner.request.post(f"/project/{project_id}/settings/api-keys", form={"note": "x"}).status == 403

    for path in ("", "/traces", "/traces/t-rbac", "/sessions", "/users", "/settings"):
        response = outsider.goto(f"/project/{project_id}{path}")
        assert response.status == 404, path
    assert outsider.goto("/trace/t-rbac").status == 404
    ui.shot(outsider, "03-outsider-404")

    # the owner promotes the viewer to ADMIN: now keys can be created
    owner.goto("/organization/org-test/settings")
    row = owner.locator("[data-member='viewer@example.com']")
    row.locator("select[name=role]").select_option("ADMIN")
    row.locator("button:has-text('Change')").click()
    expect(owner.locator("[data-member='viewer@example.com'] select[name=role]")).to_have_value("ADMIN")
    viewer.goto(f"/project/{project_id}/settings")
    viewer.click("[data-testid=create-key] button")
    expect(viewer.locator("[data-testid=new-secret-key]")).to_contain_text("sk-lf-")


def test_account_page_changes_the_password_and_signs_out_everywhere(ui: Ui, web_server):
    ui.expect_statuses(401)
    here, elsewhere = ui.new_page(), ui.new_page()
    sign_in(here, INIT_EMAIL, INIT_PASSWORD)
    sign_in(elsewhere, INIT_EMAIL, INIT_PASSWORD)

    here.click("[data-testid=account]")
    expect(here).to_have_url(re.compile(r"/account$"))
    here.fill("[data-testid=change-password] input[name=current_password]", INIT_PASSWORD)
    here.fill("[data-testid=change-password] input[name=new_password]", "a-new-password-1")
    here.click("[data-testid=change-password] button")
    expect(here.locator(".flash")).to_contain_text("Password changed")
    ui.shot(here, "01-password-changed")
    # the other browser's session ended with the password change; this one goes on
    elsewhere.goto("/")
    expect(elsewhere).to_have_url(re.compile(r"/auth/sign-in"))
    sign_in(elsewhere, INIT_EMAIL, "a-new-password-1")

    here.goto("/account")
    here.click("[data-testid=sign-out-everywhere]")
    expect(here).to_have_url(re.compile(r"/auth/sign-in"))
    expect(here.locator(".flash")).to_contain_text("signed out on every device")
    elsewhere.goto("/")
    expect(elsewhere).to_have_url(re.compile(r"/auth/sign-in"))
