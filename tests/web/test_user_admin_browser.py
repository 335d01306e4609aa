"""Invitation by email in a real browser against a real server process, with sign-up disabled.

The owner invites a new person into the provisioned project from the organisation settings page; the server
mails the link through a real SMTP server (aiosmtpd); the invited person opens the emailed link in a fresh
browser, creates an account (sign-up is otherwise closed) and lands in the project. The owner then sees the
member, the accepted invitation gone from the pending list, and the entries in the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.conftest import Server, make_server
from tests.smtp_sink import Sink, smtp_sink
from tests.web.conftest import INIT_EMAIL, INIT_PASSWORD, Ui, ui_session

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp() -> Iterator[Sink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def mail_server(tmp_path, backend, smtp) -> Iterator[Server]:
    srv = make_server(
        tmp_path,
        backend,
        LANGFUSE_INIT_USER_EMAIL=INIT_EMAIL,
        LANGFUSE_INIT_USER_PASSWORD=INIT_PASSWORD,
        AUTH_DISABLE_SIGNUP="true",
        SMTP_CONNECTION_URL=smtp.url,
        EMAIL_FROM_ADDRESS="lightfuse@example.com",
    )
    srv.env["NEXTAUTH_URL"] = srv.url
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def admin_ui(chromium, mail_server, request) -> Iterator[Ui]:
    with ui_session(chromium, mail_server, request) as session:
        yield session


def test_invited_person_signs_up_from_the_email_with_signup_disabled(admin_ui: Ui, mail_server, smtp):
    ui, project_id = admin_ui, mail_server.project_id
    newcomer = "newcomer@example.com"
    owner = ui.new_page()
    owner.goto("/auth/sign-in")
    owner.fill("input[name=email]", INIT_EMAIL)
    owner.fill("input[name=password]", INIT_PASSWORD)
    owner.click("form.stack button[type=submit]")
    expect(owner).to_have_url(re.compile(r"/$"))

    owner.goto("/organization/org-test/settings")
    form = owner.locator("[data-testid=invite]")
    form.locator("input[name=email]").fill(newcomer)
    form.locator("select[name=role]").select_option("VIEWER")
    form.locator("select[name=project_id]").select_option(project_id)
    form.locator("select[name=project_role]").select_option("MEMBER")
    form.locator("button").click()
    expect(owner.locator("[data-testid=invitation-emailed]")).to_be_visible()
    expect(owner.locator("[data-invitation='newcomer@example.com']")).to_contain_text("Test Project (MEMBER)")
    ui.shot(owner, "01-invited")

    link = smtp.link(newcomer)
    assert link.startswith(mail_server.url + "/invitation/accept?token=")

    guest = ui.new_page()
    # sign-up proper is closed on this instance
    guest.goto("/auth/sign-up")
    expect(guest.locator("[data-testid=signup-disabled]")).to_be_visible()
    guest.goto(link)
    expect(guest.locator("[data-testid=invitation]")).to_contain_text("Join Test Org")
    ui.shot(guest, "02-invitation")
    guest.fill("[data-testid=invited-sign-up] input[name=name]", "New Comer")
    guest.fill("[data-testid=invited-sign-up] input[name=password]", "newcomer-password-1")
    guest.click("[data-testid=invited-sign-up] button")
    expect(guest).to_have_url(re.compile(rf"/project/{project_id}$"))
    expect(guest.locator(".role-badge")).to_have_text("MEMBER")
    ui.shot(guest, "03-in-the-project")

    # the link is spent
    ui.expect_statuses(410)
    other = ui.new_page()
    response = other.goto(link)
    assert response.status == 410
    expect(other.locator("[data-testid=invitation-invalid]")).to_be_visible()

    owner.goto("/organization/org-test/settings")
    expect(owner.locator("[data-member='newcomer@example.com']")).to_contain_text("VIEWER")
    expect(owner.locator("[data-testid=no-invitations]")).to_be_visible()
    ui.shot(owner, "04-members")
    owner.click("[data-testid=audit-log-link]")
    table = owner.locator("[data-testid=audit-log]")
    expect(table.locator("tr[data-action='invitation.create']")).to_have_count(1)
    expect(table.locator("tr[data-action='invitation.accept']")).to_contain_text(newcomer)
    ui.shot(owner, "05-audit-log")
