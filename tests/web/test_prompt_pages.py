"""Prompt pages in-process (no browser), both backends: list and folders, editor, labels, protected labels and
roles, diff, references, per-version metrics, JSON twins."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings
from tests.web.helpers import csrf_from, event, iso

OWNER_EMAIL, OWNER_PASSWORD = "owner@example.com", "owner-password-1"
PID = "proj-prompts"
JSON = {"accept": "application/json"}


@dataclass
class App:
    asgi: object
    pk: str
    sk: str

    def browser(self) -> Browser:
        return Browser(TestClient(self.asgi, raise_server_exceptions=False))


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.c = client

    def get(self, path: str, **kw):
        return self.c.get(path, **kw)

    def post(self, path: str, data: dict | list | None = None, page: str = "/", **kw):
        token = csrf_from(self.c.get(page).text)
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        body = urllib.parse.urlencode([("csrf_token", token), *pairs])
        headers = {"content-type": "application/x-www-form-urlencoded", **kw.pop("headers", {})}
        return self.c.post(path, content=body, headers=headers, follow_redirects=False, **kw)

    def sign_up(self, email: str) -> None:
        r = self.post("/auth/sign-up", {"email": email, "password": "password-123"}, page="/auth/sign-up")
        assert r.status_code == 303, r.text

    def sign_in(self, email: str, password: str) -> None:
        r = self.post("/auth/sign-in", {"email": email, "password": password}, page="/auth/sign-in")
        assert r.status_code == 303, r.text


@pytest.fixture
def app(backend) -> Iterator[App]:
    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-p",
        org_name="Prompt Org",
        project_id=PID,
        project_name="Prompt Project",
        project_public_key=pk,
        project_secret_key=sk,
        user_email=OWNER_EMAIL,
        user_password=OWNER_PASSWORD,
    )
    services = build_services(load_settings(**backend, init=init))
    asgi = create_app(services)
    with TestClient(asgi):
        yield App(asgi, pk, sk)
    services.engine.dispose()


def owner(app: App) -> Browser:
    b = app.browser()
    b.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    return b


def member(app: App, o: Browser, email: str, role: str) -> Browser:
    b = app.browser()
    b.sign_up(email)
    r = o.post(
        "/organization/org-p/members", {"email": email, "role": role}, page="/organization/org-p/settings"
    )
    assert r.status_code == 303, r.text
    return b


EDITOR = f"/project/{PID}/prompt-editor"


def save(b: Browser, fields: list[tuple[str, str]], **kw):
    return b.post(EDITOR, fields, page=EDITOR, **kw)


def text_prompt(
    name: str, text: str, *, production: bool = False, config: str = "{}", commit: str = "", **extra
):
    fields = [
        ("name", name),
        ("type", "text"),
        ("text", text),
        ("config", config),
        ("commit_message", commit),
    ]
    if production:
        fields.append(("production", "on"))
    fields += list(extra.items())
    return fields


def api_get(app: App, name: str, **params):
    client = TestClient(app.asgi)
    return client.get(f"/api/public/v2/prompts/{name}", params=params, auth=(app.pk, app.sk))


def test_create_edit_label_and_the_api_serves_it(app):
    o = owner(app)
    r = save(o, text_prompt("support/greeting", "Hello {{name}}!", commit="first draft", tags="a, b"))
    assert (
        r.status_code == 303 and r.headers["location"] == f"/project/{PID}/prompts/support/greeting?version=1"
    )
    assert api_get(app, "support/greeting").status_code == 404  # no production label yet
    r = save(
        o, text_prompt("support/greeting", "Hi {{name}}, welcome to {{shop}}.", commit="warmer", existing="1")
    )
    assert r.status_code == 303
    page = o.get(f"/project/{PID}/prompts/support/greeting")
    assert page.status_code == 200
    assert '<mark class="var">{{name}}</mark>' in page.text and "warmer" in page.text
    detail = o.get(f"/project/{PID}/prompts/support/greeting", headers=JSON).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][0]["createdByName"] and detail["versions"][0]["createdBy"] != "API"
    assert detail["tags"] == ["a", "b"]  # inherited by version 2
    r = o.post(
        f"/project/{PID}/prompt-labels",
        [("name", "support/greeting"), ("version", "2"), ("label", "production")],
        page=f"/project/{PID}/prompts",
    )
    assert r.status_code == 303
    got = api_get(app, "support/greeting", label="production").json()
    assert got["version"] == 2 and got["prompt"] == "Hi {{name}}, welcome to {{shop}}."
    # moving the label back to version 1; version 2 loses it
    o.post(
        f"/project/{PID}/prompt-labels",
        [("name", "support/greeting"), ("version", "1"), ("label", "production"), ("new_labels", "staging")],
        page=f"/project/{PID}/prompts",
    )
    assert api_get(app, "support/greeting").json()["version"] == 1
    labels = {
        v["version"]: v["labels"]
        for v in o.get(f"/project/{PID}/prompts/support/greeting", headers=JSON).json()["versions"]
    }
    assert labels == {2: ["latest"], 1: ["production", "staging"]}
    # unchecking every label removes them (latest stays where it is)
    o.post(f"/project/{PID}/prompt-labels", [("name", "support/greeting"), ("version", "1")], page="/")
    assert api_get(app, "support/greeting").status_code == 404


def test_list_folders_search_and_tags(app):
    o = owner(app)
    for name, tags in (("a/one", "x"), ("a/b/two", "y"), ("top", "x")):
        assert save(o, text_prompt(name, "t", tags=tags)).status_code == 303
    top = o.get(f"/project/{PID}/prompts", headers=JSON).json()
    assert [(r["kind"], r["name"]) for r in top["data"]] == [("folder", "a"), ("prompt", "top")]
    assert top["tags"] == ["x", "y"]
    inside = o.get(f"/project/{PID}/prompts?folder=a", headers=JSON).json()["data"]
    assert [(r["kind"], r["name"]) for r in inside] == [("folder", "a/b"), ("prompt", "a/one")]
    assert inside[1]["versions"] == 1 and inside[1]["labels"] == ["latest"] and inside[1]["lastUpdatedAt"]
    found = o.get(f"/project/{PID}/prompts?q=TWO", headers=JSON).json()["data"]
    assert [r["name"] for r in found] == ["a/b/two"]
    tagged = o.get(f"/project/{PID}/prompts?tag=x", headers=JSON).json()["data"]
    assert [r["name"] for r in tagged] == ["a/one", "top"]
    html = o.get(f"/project/{PID}/prompts?folder=a").text
    assert 'data-folder="a/b"' in html and 'data-prompt="a/one"' in html


def test_chat_prompt_config_validation_and_diff(app):
    o = owner(app)
    bad = save(
        o,
        [
            ("name", "bot"),
            ("type", "chat"),
            ("config", "{nope"),
            ("msg_kind", "message"),
            ("msg_role", "system"),
            ("msg_content", "Be {{tone}}"),
        ],
    )
    assert bad.status_code == 400 and "Config is not valid JSON" in bad.text and "{nope" in bad.text
    bad = save(o, [("name", "bot"), ("type", "chat"), ("config", "[1]")])
    assert bad.status_code == 400 and "must be a JSON object" in bad.text
    fields = [
        ("name", "bot"), ("type", "chat"), ("config", '{"model": "gpt-4o", "temperature": 0}'),
        ("msg_kind", "message"), ("msg_role", "system"), ("msg_content", "Be {{tone}}"),
        ("msg_kind", "placeholder"), ("msg_role", ""), ("msg_content", "history"),
        ("msg_kind", "message"), ("msg_role", "user"), ("msg_content", "{{question}}"),
    ]  # fmt: skip
    assert save(o, fields).status_code == 303
    fields[2] = ("config", '{"model": "gpt-4o", "temperature": 0.7}')
    fields[5] = ("msg_content", "Be {{tone}} and brief")
    assert save(o, fields + [("existing", "1")]).status_code == 303
    v1 = api_get(app, "bot", version=1).json()
    assert v1["prompt"][1] == {"type": "placeholder", "name": "history"} and v1["config"]["temperature"] == 0
    page = o.get(f"/project/{PID}/prompts/bot").text
    assert '<mark class="ph">{{history}}</mark>' in page
    diff = o.get(f"/project/{PID}/prompt-diff?name=bot&a=1&b=2", headers=JSON).json()
    changed = [r for r in diff["prompt"]["rows"] if r["op"] != "equal"]
    assert changed == [
        {"op": "change", "left": "Be {{tone}}", "right": "Be {{tone}} and brief", "leftNo": 2, "rightNo": 2}
    ]
    assert diff["config"]["added"] == 1 and diff["config"]["removed"] == 1
    html = o.get(f"/project/{PID}/prompt-diff?name=bot").text  # defaults: previous vs newest
    assert 'class="d-change"' in html and "and brief" in html
    assert o.get(f"/project/{PID}/prompt-diff?name=bot&a=1&b=9").status_code == 404
    assert o.get(f"/project/{PID}/prompt-diff?name=bot&a=x").status_code == 400


def test_references_are_shown_and_resolved(app):
    o = owner(app)
    save(o, text_prompt("snippets/tone", "Be kind.", production=True))
    save(o, text_prompt("main", "Intro. @@@langfusePrompt:name=snippets/tone|label=production@@@ Go."))
    detail = o.get(f"/project/{PID}/prompts/main", headers=JSON).json()
    assert (
        detail["references"][0]["name"] == "snippets/tone" and detail["references"][0]["resolvedVersion"] == 1
    )
    assert detail["resolvedPrompt"] == "Intro. Be kind. Go."
    html = o.get(f"/project/{PID}/prompts/main").text
    assert 'class="ref"' in html and f"/project/{PID}/prompts/snippets/tone?version=1" in html


def test_roles_viewer_member_admin_and_protected_labels(app):
    o = owner(app)
    save(o, text_prompt("guarded", "v1"))
    save(o, text_prompt("guarded", "v2", existing="1"))
    viewer = member(app, o, "viewer@example.com", "VIEWER")
    mem = member(app, o, "member@example.com", "MEMBER")
    adm = member(app, o, "admin@example.com", "ADMIN")
    viewer.sign_in("viewer@example.com", "password-123")
    mem.sign_in("member@example.com", "password-123")
    adm.sign_in("admin@example.com", "password-123")
    page = f"/project/{PID}/prompts"
    # VIEWER reads, but cannot create, edit or label
    assert viewer.get(f"/project/{PID}/prompts/guarded").status_code == 200
    assert 'data-testid="new-version"' not in viewer.get(f"/project/{PID}/prompts/guarded").text
    assert viewer.get(EDITOR).status_code == 403
    assert save(viewer, text_prompt("v-new", "x")).status_code == 403
    assert save(viewer, text_prompt("guarded", "x", existing="1")).status_code == 403
    r = viewer.post(
        f"/project/{PID}/prompt-labels",
        [("name", "guarded"), ("version", "1"), ("label", "production")],
        page=page,
    )
    assert r.status_code == 403
    # MEMBER cannot protect labels; ADMIN can
    assert (
        mem.post(f"/project/{PID}/settings/prompts/protect", {"label": "production"}, page=page).status_code
        == 403
    )
    assert (
        adm.post(f"/project/{PID}/settings/prompts/protect", {"label": "production"}, page=page).status_code
        == 303
    )
    assert o.get(f"/project/{PID}/settings/prompts", headers=JSON).json() == {
        "protectedLabels": ["production"]
    }
    # MEMBER: other labels yes, the protected one no (neither by label form nor when saving a version)
    ok = mem.post(
        f"/project/{PID}/prompt-labels",
        [("name", "guarded"), ("version", "1"), ("label", "staging")],
        page=page,
    )
    assert ok.status_code == 303
    refused = mem.post(
        f"/project/{PID}/prompt-labels",
        [("name", "guarded"), ("version", "1"), ("label", "production")],
        page=page,
    )
    assert refused.status_code == 403 and "protected" in refused.text
    assert save(mem, text_prompt("guarded", "v3", production=True, existing="1")).status_code == 403
    assert save(mem, text_prompt("guarded", "v3", existing="1")).status_code == 303  # unprotected save works
    assert api_get(app, "guarded").status_code == 404
    # ADMIN moves it; then MEMBER cannot take it away either
    r = adm.post(
        f"/project/{PID}/prompt-labels",
        [("name", "guarded"), ("version", "2"), ("label", "production")],
        page=page,
    )
    assert r.status_code == 303 and api_get(app, "guarded").json()["version"] == 2
    r = mem.post(f"/project/{PID}/prompt-labels", [("name", "guarded"), ("version", "2")], page=page)
    assert r.status_code == 403 and api_get(app, "guarded").json()["version"] == 2
    # API keys are not bound by protection (api-semantics 6)
    client = TestClient(app.asgi)
    r = client.patch(
        "/api/public/v2/prompts/guarded/versions/1", json={"newLabels": ["production"]}, auth=(app.pk, app.sk)
    )
    assert r.status_code == 200 and api_get(app, "guarded").json()["version"] == 1
    # unprotected again, MEMBER may move it
    assert (
        adm.post(f"/project/{PID}/settings/prompts/unprotect", {"label": "production"}, page=page).status_code
        == 303
    )
    r = mem.post(
        f"/project/{PID}/prompt-labels",
        [("name", "guarded"), ("version", "3"), ("label", "production")],
        page=page,
    )
    assert r.status_code == 303 and api_get(app, "guarded").json()["version"] == 3


def test_outsider_gets_404_and_bad_input_4xx(app):
    o = owner(app)
    out = app.browser()
    out.sign_up("outsider@example.com")
    assert out.get(f"/project/{PID}/prompts").status_code == 404
    assert o.get(f"/project/{PID}/prompts/missing").status_code == 404
    assert o.get(f"/project/{PID}/prompts/missing", headers=JSON).json()["error"] == "NotFoundError"
    assert o.get(f"/project/{PID}/prompts?page=0").status_code == 400
    assert save(o, text_prompt("", "x")).status_code == 400
    assert save(o, text_prompt("bad", "x", labels="Not Valid")).status_code == 400
    r = o.post(f"/project/{PID}/prompt-labels", [("name", "nope"), ("version", "1")], page="/")
    assert r.status_code == 404
    r = o.post(f"/project/{PID}/prompt-labels", [("name", "nope"), ("version", "x")], page="/")
    assert r.status_code == 400
    assert (
        o.post(f"/project/{PID}/settings/prompts/protect", {"label": "BAD LABEL"}, page="/").status_code
        == 400
    )


def _generation(
    trace_id: str, version: int, start: dt.datetime, ms: int, tokens: tuple[int, int], cost: float
):
    t = lambda off: iso(start + dt.timedelta(milliseconds=off))  # noqa: E731
    return [
        event("trace-create", {"id": trace_id, "timestamp": t(0), "name": "chat"}, t(0)),
        event(
            "generation-create",
            {
                "id": f"{trace_id}-g",
                "traceId": trace_id,
                "name": "llm",
                "startTime": t(0),
                "endTime": t(ms),
                "promptName": "measured",
                "promptVersion": version,
                "usageDetails": {"input": tokens[0], "output": tokens[1]},
                "costDetails": {"total": cost},
            },
            t(0),
        ),
        event(
            "score-create",
            {"id": f"{trace_id}-s", "traceId": trace_id, "name": "quality", "value": version * 0.25},
            t(0),
        ),
    ]


def test_metrics_per_version(app):
    o = owner(app)
    save(o, text_prompt("measured", "one"))
    save(o, text_prompt("measured", "two", existing="1"))
    now = dt.datetime.now(dt.UTC)
    batch = []
    # version 1: latencies 100, 300, 200, 1000 -> median 250; input tokens 10, 30, 20, 40 -> 25
    for i, (ms, inp) in enumerate(((100, 10), (300, 30), (200, 20), (1000, 40))):
        batch += _generation(f"m1-{i}", 1, now, ms, (inp, 5), 0.01 * (i + 1))
    # version 2: latencies 500, 700, 600 -> median 600
    for i, ms in enumerate((500, 700, 600)):
        batch += _generation(f"m2-{i}", 2, now, ms, (100, 50), 0.5)
    client = TestClient(app.asgi)
    r = client.post("/api/public/ingestion", json={"batch": batch}, auth=(app.pk, app.sk))
    assert r.status_code == 207 and r.json()["errors"] == []
    deadline = time.monotonic() + 20
    for _ in range(200):
        detail = o.get(f"/project/{PID}/prompts/measured", headers=JSON).json()
        by_version = {v["version"]: v for v in detail["versions"]}
        if (
            by_version[1]["metrics"]["generations"] == 4
            and by_version[2]["scores"]
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.1)
    m1, m2 = by_version[1]["metrics"], by_version[2]["metrics"]
    assert m1["generations"] == 4 and m1["medianLatencyMs"] == 250 and m1["medianInputTokens"] == 25
    assert m1["medianOutputTokens"] == 5 and m1["medianCost"] == pytest.approx(0.025)
    assert m1["totalCost"] == pytest.approx(0.1)
    assert m2["generations"] == 3 and m2["medianLatencyMs"] == 600 and m2["medianCost"] == pytest.approx(0.5)
    assert by_version[1]["scores"] == [{"name": "quality", "avg": 0.25, "count": 4}]
    assert by_version[2]["scores"] == [{"name": "quality", "avg": 0.5, "count": 3}]
    html = o.get(f"/project/{PID}/prompts/measured").text
    assert 'data-testid="generations-1">4<' in html and "quality: 0.5" in html
