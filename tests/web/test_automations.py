"""Issue #18 item 4: webhook automations on prompt changes.

In-process app on both backends (real SQLite file / real Postgres), a real HTTP receiver in a thread
(tests/webhook_receiver.py) that checks every signature with the secret the UI showed once. Prompt changes go
through the public API. The delivery daemon is parked (poll interval of an hour) so each test drives
``run_due`` itself and knows exactly which worker sent what.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings
from lightfuse.services.automations.delivery import DISABLE_AFTER, WebhookSender
from lightfuse.services.common import secrets_box
from lightfuse.services.common.outbound import OutboundPolicy
from lightfuse.services.prompts.prompts import PromptService
from lightfuse.store.sql import automations as automation_store
from tests.web.test_web_inprocess import OWNER_EMAIL, OWNER_PASSWORD, PROJECT, App, Browser, _add_member
from tests.webhook_receiver import Receiver, webhook_receiver

JSON = {"accept": "application/json"}
PAGE = f"/project/{PROJECT}/settings/automations"
KEY = "0123456789abcdef" * 4


def _app(backend, **extra) -> Iterator[App]:
    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-web",
        org_name="Web Org",
        project_id=PROJECT,
        project_name="Web Project",
        project_public_key=pk,
        project_secret_key=sk,
        user_email=OWNER_EMAIL,
        user_password=OWNER_PASSWORD,
    )
    settings = load_settings(
        **backend,
        init=init,
        encryption_key=KEY,
        webhook_retry_base_seconds=0.05,
        webhook_poll_seconds=3600,
        **extra,
    )
    services = build_services(settings)
    asgi = create_app(services)
    with TestClient(asgi):
        yield App(services, asgi, pk, sk)
    services.engine.dispose()


@pytest.fixture
def app(backend) -> Iterator[App]:
    yield from _app(backend, webhook_whitelisted_ips="127.0.0.1")


@pytest.fixture
def strict_app(backend) -> Iterator[App]:
    yield from _app(backend)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver([500, 500, 200]) as r:
        yield r


def owner(app: App) -> Browser:
    b = Browser(app.client())
    assert b.sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303
    return b


def create(b: Browser, url: str, **fields):
    data = {"name": "deploy hook", "url": url, **fields}
    return b.post(PAGE, data, page=PAGE, headers=JSON)


def api(app: App) -> TestClient:
    c = app.client()
    c.auth = (app.pk, app.sk)
    return c


def deliver_all(app: App, sender: WebhookSender | None = None, rounds: int = 100) -> None:
    """Run the sender until no delivery is pending (retries are due after 50 ms, 100 ms, ...)."""
    sender = sender or app.services.webhooks
    for _ in range(rounds):
        sender.run_due()
        if not any(
            d["status"] in ("pending", "sending") for d in app.services.automations.deliveries(PROJECT)
        ):
            return
        time.sleep(0.05)
    raise AssertionError("deliveries still pending")


def test_signed_delivery_is_retried_until_accepted_and_logged(app, receiver):
    b = owner(app)
    r = create(b, receiver.url, headers="X-Team: prompts")
    assert r.status_code == 201, r.text
    created = r.json()
    receiver.secret = created["secret"]
    assert created["secret"].startswith("lf-whsec_")
    # shown once: the list and the page carry only the masked form
    listed = b.get(PAGE, headers=JSON).json()["automations"]
    assert created["secret"] not in str(listed) and created["secret"] not in b.get(PAGE).text
    assert listed[0]["action"]["displaySecretKey"].endswith(created["secret"][-4:])

    body = {"name": "support/greeting", "type": "text", "prompt": "Hi {{n}}", "labels": ["production"]}
    assert api(app).post("/api/public/v2/prompts", json=body).status_code == 201
    deliver_all(app)

    assert [q["status"] for q in receiver.requests] == [500, 500, 200]
    assert all(q["verified"] for q in receiver.requests), "every attempt carries a valid signature"
    assert len({q["json"]["id"] for q in receiver.requests}) == 1, "retries resend the same event"
    sent = receiver.requests[-1]
    assert sent["headers"]["x-team"] == "prompts"
    assert sent["headers"]["content-type"] == "application/json"
    event = sent["json"]
    assert event["type"] == "prompt-version" and event["action"] == "created" and event["apiVersion"] == "v1"
    assert event["prompt"]["name"] == "support/greeting" and event["prompt"]["version"] == 1
    assert sorted(event["prompt"]["labels"]) == ["latest", "production"]

    log = b.get(PAGE, headers=JSON).json()["deliveries"]
    assert len(log) == 1
    assert log[0]["status"] == "succeeded" and log[0]["attempts"] == 3 and log[0]["lastStatusCode"] == 200
    assert [a["statusCode"] for a in log[0]["log"]] == [500, 500, 200]
    assert [a["error"] for a in log[0]["log"]] == ["HTTP 500", "HTTP 500", None]
    html = b.get(PAGE).text
    assert "succeeded" in html and "support/greeting v1" in html

    # a tampered body or another secret does not verify (the receiver's check can fail)
    from tests.webhook_receiver import check_signature

    header = sent["headers"]["x-langfuse-signature"]
    assert check_signature(created["secret"], sent["body"], header)
    assert not check_signature(created["secret"], sent["body"] + b" ", header)
    assert not check_signature("lf-whsec_other", sent["body"], header)


def test_label_moves_and_deletes_are_events_and_filters_apply(app):
    b = owner(app)
    with webhook_receiver([200]) as rec:
        assert create(b, rec.url, prompt_name="a").status_code == 201
        assert create(b, rec.url, actions="deleted").status_code == 201
        c = api(app)
        for name in ("a", "a", "b"):
            assert c.post("/api/public/v2/prompts", json={"name": name, "prompt": "x"}).status_code == 201
        r = c.patch("/api/public/v2/prompts/a/versions/1", json={"newLabels": ["production"]})
        assert r.status_code == 200, r.text
        assert c.delete("/api/public/v2/prompts/b").status_code == 204
        deliver_all(app)
        seen = sorted(
            (q["json"]["action"], q["json"]["prompt"]["name"], q["json"]["prompt"]["version"])
            for q in rec.requests
        )
    # the "a" hook: two creations and the label change; the deletes-only hook: the deletion of b
    assert seen == [("created", "a", 1), ("created", "a", 2), ("deleted", "b", 1), ("updated", "a", 1)]
    updated = next(q["json"]["prompt"] for q in rec.requests if q["json"]["action"] == "updated")
    assert "production" in updated["labels"]


def test_a_rolled_back_prompt_change_sends_nothing(app):
    b = owner(app)
    with webhook_receiver([200]) as rec:
        assert create(b, rec.url).status_code == 201
        c = api(app)
        assert c.post("/api/public/v2/prompts", json={"name": "base", "prompt": "x"}).status_code == 201
        child = {"name": "child", "prompt": "@@@langfusePrompt:name=base|label=latest@@@"}
        assert c.post("/api/public/v2/prompts", json=child).status_code == 201
        deliver_all(app)
        assert len(rec.requests) == 2
        # refused inside its transaction (child depends on base): the outbox row goes with it
        r = c.delete("/api/public/v2/prompts/base")
        assert r.status_code == 400, r.text

        # deleting both versions of "two" announces two events; a failure at the second one (after the first
        # outbox row was written) rolls back the prompts and every outbox row together
        for _ in range(2):
            assert c.post("/api/public/v2/prompts", json={"name": "two", "prompt": "x"}).status_code == 201
        deliver_all(app)
        assert len(rec.requests) == 4
        seen: list[str] = []

        def fail_second(_conn, _project, event):
            seen.append(event["action"])
            if len(seen) == 2:
                raise RuntimeError("after an outbox write")

        prompts = PromptService(
            app.services.engine, listeners=[app.services.automations.on_change, fail_second]
        )
        with pytest.raises(RuntimeError):
            prompts.delete(PROJECT, "two")
        assert seen == ["deleted", "deleted"]
        assert c.get("/api/public/v2/prompts/two?version=2").status_code == 200
        deliver_all(app)
        assert len(rec.requests) == 4
    assert len(app.services.automations.deliveries(PROJECT)) == 4


def test_two_workers_never_send_one_delivery_twice(app):
    b = owner(app)
    with webhook_receiver([200]) as rec:
        assert create(b, rec.url).status_code == 201
        c = api(app)
        for i in range(30):
            assert c.post("/api/public/v2/prompts", json={"name": f"p{i}", "prompt": "x"}).status_code == 201
        policy = OutboundPolicy(ips="127.0.0.1")
        workers = [WebhookSender(app.services.engine, KEY, policy, batch=3) for _ in range(2)]
        sent = [0, 0]

        def work(i: int) -> None:
            for _ in range(50):
                sent[i] += workers[i].run_due()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        ids = [q["json"]["id"] for q in rec.requests]
    assert len(ids) == 30 and len(set(ids)) == 30, "each delivery sent exactly once"
    assert sum(sent) == 30
    assert all(
        d["status"] == "succeeded" and d["attempts"] == 1
        for d in app.services.automations.deliveries(PROJECT)
    )


def test_claims_are_exclusive(app):
    # the claim itself, raced by two loops: every row goes to exactly one owner
    b = owner(app)
    assert create(b, "http://127.0.0.1:9/none").status_code == 201
    c = api(app)
    for i in range(40):
        assert c.post("/api/public/v2/prompts", json={"name": f"q{i}", "prompt": "x"}).status_code == 201
    engine = app.services.engine
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def loop(owner_id: str) -> None:
        for _ in range(200):
            rows = automation_store.claim_due(engine, owner_id, int(time.time() * 1000), 60_000, 2)
            if not rows:
                return
            claimed[owner_id] += [r["id"] for r in rows]

    threads = [threading.Thread(target=loop, args=(o,)) for o in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 40
    # a lease that ran out is claimable again (its worker is presumed dead); a live one is not
    later = int(time.time() * 1000)
    assert automation_store.claim_due(engine, "c", later, 60_000, 100) == []
    assert len(automation_store.claim_due(engine, "c", later + 61_000, 60_000, 100)) == 40


def test_member_sees_but_cannot_manage_automations(app):
    o = owner(app)
    with webhook_receiver([200]) as rec:
        hook_id = create(o, rec.url).json()["id"]
        m = Browser(app.client())
        m.sign_up("member@example.com")
        assert _add_member(o, "member@example.com", "MEMBER").status_code == 303
        assert m.get(PAGE).status_code == 200
        assert 'data-testid="create-automation"' not in m.get(PAGE).text
        assert [a["id"] for a in m.get(PAGE, headers=JSON).json()["automations"]] == [hook_id]
        r = create(m, rec.url)
        assert r.status_code == 403 and r.json()["error"] == "ForbiddenError"
        for verb in ("disable", "delete", "test", "regenerate-secret"):
            assert m.post(f"{PAGE}/{hook_id}/{verb}", page=PAGE, headers=JSON).status_code == 403
        # the owner may: switch off, test (sent even while disabled), delete
        assert o.post(f"{PAGE}/{hook_id}/disable", page=PAGE, headers=JSON).json()["enabled"] is False
        assert o.post(f"{PAGE}/{hook_id}/test", page=PAGE, headers=JSON).status_code == 200
        deliver_all(app)
        assert [q["json"]["prompt"]["name"] for q in rec.requests] == ["lightfuse-webhook-test"]
        assert o.post(f"{PAGE}/{hook_id}/delete", page=PAGE, headers=JSON).status_code == 200
        assert o.get(PAGE, headers=JSON).json() == {"automations": [], "deliveries": []}


def test_bad_input_is_a_clear_400(app):
    b = owner(app)
    for fields, words in [
        ({"url": "ftp://x"}, "http(s)"),
        ({"url": "http://127.0.0.1:9/x", "headers": "no colon"}, "Name: value"),
        ({"url": "http://127.0.0.1:9/x", "headers": "X-Langfuse-Signature: forged"}, "set by Lightfuse"),
        ({"url": "http://127.0.0.1:9/x", "headers": "Bad Name: v"}, "not a valid header"),
        ({"url": "http://127.0.0.1:9/x", "actions": "exploded"}, "eventActions"),
        ({"url": "http://127.0.0.1:9/x", "name": ""}, "name"),
    ]:
        r = create(b, **fields)
        assert r.status_code == 400, (fields, r.text)
        assert words in r.json()["message"] and r.json()["error"] == "InvalidRequestError"
    assert b.post(f"{PAGE}/nope/delete", page=PAGE, headers=JSON).status_code == 404


def test_internal_addresses_are_refused_without_the_allow_list(strict_app):
    b = owner(strict_app)
    for url in ("http://127.0.0.1:8080/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest"):
        r = create(b, url)
        assert r.status_code == 400, r.text
        assert "LANGFUSE_WEBHOOK_WHITELISTED" in r.json()["message"]
    assert b.get(PAGE, headers=JSON).json()["automations"] == []


def test_send_time_refusal_fails_at_once(app):
    # allowed when created; a sender whose policy does not allow it (allow-list removed) refuses to send
    b = owner(app)
    with webhook_receiver([200]) as rec:
        assert create(b, rec.url).status_code == 201
        assert api(app).post("/api/public/v2/prompts", json={"name": "p", "prompt": "x"}).status_code == 201
        deliver_all(app, WebhookSender(app.services.engine, KEY, OutboundPolicy()))
        assert rec.requests == []
    (d,) = app.services.automations.deliveries(PROJECT)
    assert d["status"] == "failed" and d["attempts"] == 1 and d["lastError"].startswith("refused")


def test_secret_is_stored_encrypted_and_repeated_failures_disable_the_automation(app):
    b = owner(app)
    with webhook_receiver([500]) as rec:
        created = create(b, rec.url, headers="Authorization: Bearer hook-token-123").json()
        assert created["action"]["headers"] == {"Authorization": "********"}
        with app.services.engine.connect() as conn:
            row = automation_store.get_automation(conn, PROJECT, created["id"])
        assert row is not None and created["secret"] not in str(row) and "hook-token-123" not in str(row)
        assert secrets_box.decrypt(KEY, row["secret_encrypted"]) == created["secret"]
        assert "hook-token-123" not in b.get(PAGE).text + b.get(PAGE, headers=JSON).text

        once = WebhookSender(app.services.engine, KEY, OutboundPolicy(ips="127.0.0.1"), max_attempts=1)
        c = api(app)
        for i in range(DISABLE_AFTER):
            assert c.post("/api/public/v2/prompts", json={"name": f"f{i}", "prompt": "x"}).status_code == 201
            deliver_all(app, once)
        (automation,) = b.get(PAGE, headers=JSON).json()["automations"]
        assert automation["enabled"] is False and automation["consecutiveFailures"] == DISABLE_AFTER
        assert c.post("/api/public/v2/prompts", json={"name": "after", "prompt": "x"}).status_code == 201
        assert len(app.services.automations.deliveries(PROJECT)) == DISABLE_AFTER
        assert len(rec.requests) == DISABLE_AFTER
        assert rec.requests[0]["headers"]["authorization"] == "Bearer hook-token-123"


def test_a_slow_receiver_times_out_and_is_retried(app):
    b = owner(app)
    with webhook_receiver([200]) as rec:
        rec.delay_s = 1.0
        assert create(b, rec.url).status_code == 201
        assert (
            api(app).post("/api/public/v2/prompts", json={"name": "slow", "prompt": "x"}).status_code == 201
        )
        sender = WebhookSender(
            app.services.engine, KEY, OutboundPolicy(ips="127.0.0.1", timeout_ms=200), base_delay_s=0.05
        )
        sender.run_due()
        (d,) = app.services.automations.deliveries(PROJECT)
        assert d["status"] == "pending" and d["attempts"] == 1 and d["lastStatusCode"] is None
        assert "Timeout" in d["lastError"] and d["log"][0]["error"] == d["lastError"]
        rec.delay_s = 0
        deliver_all(app)
    (d,) = app.services.automations.deliveries(PROJECT)
    assert d["status"] == "succeeded" and d["attempts"] == 2


def test_finished_deliveries_are_pruned_after_the_retention(app):
    b = owner(app)
    with webhook_receiver([200]) as rec:
        assert create(b, rec.url).status_code == 201
        c = api(app)
        for name in ("old", "recent"):
            assert c.post("/api/public/v2/prompts", json={"name": name, "prompt": "x"}).status_code == 201
        deliver_all(app)
        assert c.post("/api/public/v2/prompts", json={"name": "waiting", "prompt": "x"}).status_code == 201
    old = next(
        d for d in app.services.automations.deliveries(PROJECT) if d["payload"]["prompt"]["name"] == "old"
    )
    month_ago = int(time.time() * 1000) - 31 * 24 * 3600 * 1000
    with app.services.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE automation_deliveries SET updated_at = :t WHERE id = :id OR status = 'pending'"),
            {"t": month_ago, "id": old["id"]},
        )
    assert app.services.webhooks.prune(month_ago + 1000) == 1  # a pending one stays, however old
    left = sorted(d["payload"]["prompt"]["name"] for d in app.services.automations.deliveries(PROJECT))
    assert left == ["recent", "waiting"]
    with app.services.engine.connect() as conn:
        orphans = conn.execute(
            sa.text("SELECT count(*) FROM automation_attempts WHERE delivery_id = :id"), {"id": old["id"]}
        )
        assert orphans.scalar_one() == 0
