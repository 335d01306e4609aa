"""Roles on the playground and the LLM connection pages (in-process app, SQLite and Postgres): VIEWER reads
but runs nothing and manages nothing, MEMBER runs the playground, only OWNER/ADMIN manage connections; the
JSON routes need the CSRF header; bad run input is a 400 in Langfuse's shape."""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pytest

from tests.fake_llm import FakeLlm
from tests.web.test_web_inprocess import PROJECT, _add_member, app, browser, owner  # noqa: F401 - app is a fixture

HX_CSRF = re.compile(r'"X-CSRF-Token": "([^"]+)"')
SETTINGS = {"encryption_key": "ef" * 32, "llm_whitelisted_ips": "127.0.0.1"}


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    fake = FakeLlm(token_delay=0.0).start()
    try:
        yield fake
    finally:
        fake.stop()


def _run(b, connection_id: str, with_csrf: bool = True, **over):
    token = HX_CSRF.search(b.get(f"/project/{PROJECT}/playground").text).group(1)
    body = {
        "connectionId": connection_id,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        **over,
    }
    headers = {"X-CSRF-Token": token} if with_csrf else {}
    return b.c.post(f"/project/{PROJECT}/playground/run", json=body, headers=headers)


@pytest.mark.parametrize("app", [SETTINGS], indirect=True)
def test_roles_on_the_playground_and_connections(app, fake_llm):  # noqa: F811 - the fixture
    conn = app.client().put(
        "/api/public/llm-connections",
        auth=(app.pk, app.sk),
        json={
            "provider": "fake",
            "adapter": "openai",
            "secretKey": fake_llm.api_key,
            "baseURL": fake_llm.base_url,
        },
    )
    assert conn.status_code == 201, conn.text
    connection_id = conn.json()["id"]
    o = owner(app)
    viewer, member = browser(app), browser(app)
    viewer.sign_up("viewer@example.com")
    member.sign_up("member@example.com")
    assert _add_member(o, "viewer@example.com", "VIEWER").status_code == 303
    assert _add_member(o, "member@example.com", "MEMBER").status_code == 303

    page = viewer.get(f"/project/{PROJECT}/playground")
    assert page.status_code == 200 and 'data-testid="cannot-run"' in page.text
    assert _run(viewer, connection_id).status_code == 403
    listing = viewer.get(f"/project/{PROJECT}/settings/llm-connections")
    assert listing.status_code == 200 and "llm-connection-form" not in listing.text
    assert fake_llm.api_key not in listing.text
    form = {"provider": "x", "adapter": "openai", "secretKey": "k"}
    page_url = f"/project/{PROJECT}/settings/llm-connections"
    for b in (viewer, member):
        assert b.post(page_url, form, page=page_url).status_code == 403
        assert b.post(f"{page_url}/{connection_id}/delete", page=page_url).status_code == 403

    ran = _run(member, connection_id)
    assert ran.status_code == 200 and ran.headers["content-type"].startswith("text/event-stream")
    events = [orjson.loads(line[6:]) for line in ran.text.split("\n\n") if line.startswith("data: ")]
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Echo: hi"
    assert events[-1]["type"] == "done"

    assert _run(member, connection_id, with_csrf=False).status_code == 403
    bad = _run(member, connection_id, params={"temperature": 9})
    assert bad.status_code == 400 and "temperature" in bad.json()["message"]
    assert _run(member, "no-such-connection").status_code == 404

    # the owner manages: the form saves, and a base URL toward an internal address is refused in the UI
    saved = o.post(page_url, {**form, "provider": "second"}, page=page_url)
    assert saved.status_code == 303
    internal = {**form, "provider": "internal", "baseURL": "http://10.0.0.1/v1"}
    refused = o.post(page_url, internal, page=page_url)
    assert refused.status_code == 303
    shown = o.get(page_url).text
    assert "non-public address" in shown and "LANGFUSE_LLM_CONNECTION_WHITELISTED" in shown
    assert 'data-provider="internal"' not in shown and 'data-provider="second"' in shown
