"""Browser fixtures: Debian's Chromium driven by Playwright (never ``playwright install``), a real server.

Every page a test opens records uncaught JavaScript errors and console errors; the test fails on any of them
unless it said which HTTP error statuses it provokes on purpose (a 404 page logs a console error in Chromium).
Screenshots go to test-artifacts/web/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, Server, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "web"
INIT_EMAIL, INIT_PASSWORD = "init-admin@example.com", "init-password-1"
_STATUS_ERROR = re.compile(r"status of (\d{3})")


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        # a failure, not a skip: CI must not pass with the browser tests silently left out
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageErrors:
    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def console(self, msg) -> None:
        if msg.type != "error":
            return
        status = _STATUS_ERROR.search(msg.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")


class Ui:
    """Opens browser contexts (one per user) whose pages report their errors, and takes screenshots."""

    def __init__(self, browser, base_url: str, shots: Path) -> None:
        self.browser = browser
        self.base_url = base_url
        self.shots = shots
        self.errors = PageErrors()
        self._contexts = []

    def new_page(self):
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1400, "height": 900})
        self._contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.errors.append(f"pageerror: {exc}"))
        page.on("console", self.errors.console)
        page.on("dialog", lambda dialog: dialog.accept())
        page.set_default_timeout(15_000)
        return page

    def expect_statuses(self, *statuses: int) -> None:
        self.errors.expected_statuses.update(statuses)

    def shot(self, page, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def web_server(tmp_path, backend) -> Iterator[Server]:
    srv = make_server(
        tmp_path, backend, LANGFUSE_INIT_USER_EMAIL=INIT_EMAIL, LANGFUSE_INIT_USER_PASSWORD=INIT_PASSWORD
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def ui_session(chromium, server: Server, request) -> Iterator[Ui]:
    """A browser session on ``server`` for one test (screenshots named after it); fails on JavaScript errors."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    session = Ui(chromium, server.url, ARTIFACTS / name)
    try:
        yield session
    finally:
        session.close()
    assert session.errors.errors == [], "JavaScript errors:\n" + "\n".join(session.errors.errors)


@pytest.fixture
def ui(chromium, web_server, request) -> Iterator[Ui]:
    with ui_session(chromium, web_server, request) as session:
        yield session
