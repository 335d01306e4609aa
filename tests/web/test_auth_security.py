"""Security issue #13, findings 4 and 5: sign-in throttling, argon2 in a bounded pool, revocable sessions.

In-process app (the ``app`` fixture of test_web_inprocess: real SQLite file or real Postgres, real argon2).
"""
# ruff: noqa: F811 - the tests take the imported ``app`` fixture as their argument

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import httpx
import pytest

from lightfuse.services.accounts import accounts as accounts_module
from lightfuse.services.accounts.login_throttle import (
    LoginThrottle,
    SqlThrottleStore,
    ThrottlePolicy,
    address_key,
)
from lightfuse.services.accounts.web_sessions import WebSessions
from lightfuse.web.session import COOKIE_NAME
from tests.web.helpers import csrf_from
from tests.web.test_web_inprocess import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    PROJECT,
    _add_member,
    app,  # noqa: F401 - the `app` fixture, shared
    browser,
    owner,
)

THROTTLE = {
    "auth_max_failures_per_account": 3,
    "auth_max_failures_per_address": 5,
    "auth_lockout_seconds": 1,
    "auth_lockout_max_seconds": 2,
}


def _wait_until_unlocked(b, email: str, password: str):
    """Sign in until the lock has passed (bounded by count); the first answer that is not 429."""
    for _ in range(100):
        r = b.sign_in(email, password)
        if r.status_code != 429:
            return r
        time.sleep(0.1)
    pytest.fail("the lock never ended")


# --- (a) throttling -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", [THROTTLE], indirect=True)
def test_wrong_passwords_lock_the_account_then_the_address(app):
    b = browser(app)
    b.sign_up("second@example.com", "second-password-1")
    for _ in range(3):
        assert b.sign_in(OWNER_EMAIL, "wrong-password").status_code == 401
    # locked: even the right password is refused, before any password check
    r = b.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert "Too many failed attempts" in r.text
    # the email is normalised: the same account in other spelling is the same key
    assert b.sign_in("  Owner@Example.COM ", OWNER_PASSWORD).status_code == 429
    token = b.csrf("/auth/sign-in")
    r = b.c.post(
        "/auth/sign-in",
        data={"csrf_token": token, "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 429 and r.json()["error"] == "TooManyRequestsError" and "retry-after" in r.headers

    # another account from the same address: its own count is fresh, the address's ends after 5 failures
    assert b.sign_in("second@example.com", "wrong-password").status_code == 401
    assert b.sign_in("second@example.com", "wrong-password").status_code == 401
    assert b.sign_in("second@example.com", "second-password-1").status_code == 429
    assert b.sign_in("nobody@example.com", "whatever-123").status_code == 429

    # once the window has passed, the right password works again (and clears the account's count)
    assert _wait_until_unlocked(b, OWNER_EMAIL, OWNER_PASSWORD).status_code == 303


@pytest.mark.parametrize("app", [THROTTLE], indirect=True)
def test_password_change_form_is_throttled_too(app):
    b = owner(app)
    for _ in range(3):
        r = b.post(
            "/account/password",
            {"current_password": "wrong-password", "new_password": "new-password-1"},
            page="/account",
        )
        assert r.status_code == 400
    r = b.post(
        "/account/password",
        {"current_password": OWNER_PASSWORD, "new_password": "new-password-1"},
        page="/account",
    )
    assert r.status_code == 429 and "retry-after" in r.headers
    # the password did not change
    assert browser(app).sign_in(OWNER_EMAIL, "new-password-1").status_code in (401, 429)


def test_backoff_grows_and_is_capped():
    class Memory:
        def __init__(self):
            self.rows = {}

        def counts(self, keys):
            return {k: self.rows[k] for k in keys if k in self.rows}

        def record_failure(self, key, now, forget_before):
            row = self.rows.get(key)
            if row is None or row["last_failure_at"] < forget_before:
                row = self.rows[key] = {"failures": 0, "locked_until": 0}
            row["failures"] += 1
            row["last_failure_at"] = now
            return row["failures"]

        def lock(self, key, until):
            self.rows[key]["locked_until"] = until

        def clear(self, key):
            self.rows.pop(key, None)

        def prune(self, quiet_before, now):
            return 0

    store = Memory()
    throttle = LoginThrottle(store, ThrottlePolicy(account_limit=3, base_s=10, max_s=35, forget_s=3600))
    key = throttle.account("A@x.io ")
    assert key == throttle.account("a@x.io")
    locks = []
    for i in range(6):
        throttle.failed([key], now_s=1000 + i)
        locked_until = store.rows[key.key]["locked_until"]
        locks.append(locked_until and locked_until - (1000 + i) * 1000)
    assert locks == [0, 0, 10_000, 20_000, 35_000, 35_000]
    # quiet for longer than forget_s: counting starts over
    throttle.failed([key], now_s=1000 + 3601 + 10)
    assert store.rows[key.key]["failures"] == 1 and store.rows[key.key]["locked_until"] == 0
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == address_key("10.0.0.1") == "10.0.0.1"
    assert len(address_key("x" * 5000)) == 40


def test_concurrent_failures_all_count(app):
    """The database store counts atomically: failures from many threads (replicas) are not lost."""
    store = SqlThrottleStore(app.services.engine)
    errors = []

    def fail():
        try:
            for _ in range(5):
                store.record_failure("acct:concurrent", 1_000, 0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert store.counts(["acct:concurrent"])["acct:concurrent"]["failures"] == 40
    # a failure after a quiet period starts over
    assert store.record_failure("acct:concurrent", 5_000, forget_before=2_000) == 1


# --- (b) argon2 in a bounded pool; the API's threads stay free ----------------------------------------------


class CountingHasher:
    """The real argon2 hasher, counting how many of its calls run at once."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def _count(self, fn, *args):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            return fn(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password):
        return self._count(self.inner.hash, password)

    def verify(self, password_hash, password):
        return self._count(self.inner.verify, password_hash, password)


@pytest.mark.parametrize(
    "app",
    [{"auth_hash_threads": 2, "auth_hash_queue": 2, "auth_max_failures_per_address": 1000}],
    indirect=True,
)
def test_sign_in_flood_runs_at_most_the_pool_and_leaves_the_api_threads_free(app, monkeypatch):
    counting = CountingHasher(accounts_module._hasher)
    monkeypatch.setattr(accounts_module, "_hasher", counting)
    flood = 40

    async def scenario():
        transport = httpx.ASGITransport(app=app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/auth/sign-in")
            cookie = f"{COOKIE_NAME}={page.cookies[COOKIE_NAME]}"
            form = {"csrf_token": csrf_from(page.text), "email": OWNER_EMAIL, "password": OWNER_PASSWORD}
            limiter = anyio.to_thread.current_default_thread_limiter()
            borrowed: list[int] = []
            done = asyncio.Event()

            async def sample():
                for _ in range(20_000):  # bounded; ends with the flood
                    borrowed.append(limiter.borrowed_tokens)
                    if done.is_set():
                        return
                    await asyncio.sleep(0.002)

            async def one_sign_in():
                return await client.post("/auth/sign-in", data=form, headers={"cookie": cookie})

            sampler = asyncio.create_task(sample())
            sign_ins = [asyncio.create_task(one_sign_in()) for _ in range(flood)]
            await asyncio.sleep(0.05)
            api = await client.get("/api/public/traces", auth=(app.pk, app.sk))
            answers = await asyncio.gather(*sign_ins)
            done.set()
            await sampler
            return api, answers, borrowed, limiter.total_tokens

    api, answers, borrowed, total_tokens = asyncio.run(scenario())
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {303, 503}, statuses
    assert api.status_code == 200 and api.json()["meta"]["totalItems"] >= 1
    # never more argon2 work at once than the pool has threads
    assert counting.peak <= 2, counting.peak
    # the queue is bounded: what did not fit got 503 + Retry-After at once
    busy = [r for r in answers if r.status_code == 503]
    assert busy and all(r.headers.get("retry-after") for r in busy), statuses
    assert "Too many sign-ins at once" in busy[0].text
    assert statuses.count(303) + len(busy) == flood
    # the sign-ins took (almost) none of the request thread pool the API routes need
    assert max(borrowed) <= 4 < total_tokens, max(borrowed)


# --- (c) sessions end when they should ----------------------------------------------------------------------


def _signed_out(app, cookie: str) -> bool:
    other = browser(app)
    other.c.cookies.set(COOKIE_NAME, cookie)
    r = other.get(f"/project/{PROJECT}/traces", follow_redirects=False)
    json_r = other.get(f"/project/{PROJECT}/traces", headers={"accept": "application/json"})
    assert (r.status_code == 303) == (json_r.status_code == 401)
    return r.status_code == 303 and r.headers["location"].startswith("/auth/sign-in")


def test_cookie_copied_before_sign_out_is_rejected_after(app):
    b = owner(app)
    copy = b.c.cookies.get(COOKIE_NAME)
    assert not _signed_out(app, copy)
    assert b.post("/auth/sign-out").status_code == 303
    assert _signed_out(app, copy)


def test_sign_in_rotates_the_session(app):
    b = owner(app)
    first = b.c.cookies.get(COOKIE_NAME)
    assert b.sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303
    assert b.c.cookies.get(COOKIE_NAME) != first
    assert _signed_out(app, first)
    assert b.get(f"/project/{PROJECT}/traces").status_code == 200


def test_password_change_ends_the_other_sessions(app):
    here, elsewhere = owner(app), owner(app)
    elsewhere_cookie = elsewhere.c.cookies.get(COOKIE_NAME)
    here_before = here.c.cookies.get(COOKIE_NAME)
    assert "Change password" in here.get("/account").text
    r = here.post(
        "/account/password",
        {"current_password": OWNER_PASSWORD, "new_password": "brand-new-pass-1"},
        page="/account",
    )
    assert r.status_code == 303
    assert elsewhere.get(f"/project/{PROJECT}/traces", follow_redirects=False).status_code == 303
    assert _signed_out(app, elsewhere_cookie) and _signed_out(app, here_before)
    # this browser goes on, on a fresh session
    assert here.get(f"/project/{PROJECT}/traces").status_code == 200
    assert browser(app).sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 401
    assert browser(app).sign_in(OWNER_EMAIL, "brand-new-pass-1").status_code == 303
    # a short new password is refused and changes nothing
    r = here.post(
        "/account/password",
        {"current_password": "brand-new-pass-1", "new_password": "short"},
        page="/account",
    )
    assert r.status_code == 400


def test_sign_out_everywhere(app):
    here, elsewhere = owner(app), owner(app)
    cookies = [here.c.cookies.get(COOKIE_NAME), elsewhere.c.cookies.get(COOKIE_NAME)]
    assert 'data-testid="sign-out-everywhere"' in here.get("/account").text
    r = here.post("/account/sign-out-everywhere", page="/account")
    assert r.status_code == 303 and r.headers["location"] == "/auth/sign-in"
    assert all(_signed_out(app, c) for c in cookies)
    assert here.get(f"/project/{PROJECT}/traces", follow_redirects=False).status_code == 303
    # signing in again works
    assert here.sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303


def test_removed_member_loses_access_at_once(app):
    o = owner(app)
    m = browser(app)
    m.sign_up("member@example.com")
    assert _add_member(o, "member@example.com", "MEMBER").status_code == 303
    assert m.get(f"/project/{PROJECT}/traces").status_code == 200
    members = o.get("/organization/org-web/settings", headers={"accept": "application/json"}).json()[
        "members"
    ]
    member_id = next(x["userId"] for x in members if x["email"] == "member@example.com")
    r = o.post(f"/organization/org-web/members/{member_id}/remove", page="/organization/org-web/settings")
    assert r.status_code == 303
    # the same session, the very next request: the role is read per request
    assert m.get(f"/project/{PROJECT}/traces").status_code == 404
    assert m.get(f"/project/{PROJECT}/traces", headers={"accept": "application/json"}).status_code == 404


def test_server_side_expiry(app):
    sessions = WebSessions(app.services.engine, max_age_s=0)
    o = owner(app)
    user_id = next(
        x["userId"]
        for x in o.get("/organization/org-web/settings", headers={"accept": "application/json"}).json()[
            "members"
        ]
        if x["email"] == OWNER_EMAIL
    )
    token = sessions.start(user_id)
    assert sessions.resolve(token, user_id) is None
    live = WebSessions(app.services.engine, max_age_s=60)
    token = live.start(user_id)
    assert live.resolve(token, user_id).email == OWNER_EMAIL
    assert live.resolve(token, "someone-else") is None
    live.end(token)
    assert live.resolve(token, user_id) is None
