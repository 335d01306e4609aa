"""Every route of the app refuses missing and wrong credentials, except the ones listed here as public (with why).

The routes come from the app itself, so a route added later without an auth dependency fails this test until it
is protected or listed below with its reason.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

from starlette.routing import Mount

# (method, path) -> why it answers without credentials
PUBLIC = {
    ("GET", "/api/public/health"): "liveness probe (Langfuse serves it without auth)",
    ("GET", "/api/public/ready"): "readiness probe (Langfuse serves it without auth)",
    ("GET", "/api/openapi.json"): "the API description itself",
    ("GET", "/metrics"): "Prometheus scrape target: instance-wide gauges, no project data",
    ("GET", "/api/docs"): "the interactive page that renders /api/openapi.json",
    ("GET", "/docs/oauth2-redirect"): "FastAPI's helper page of /api/docs, static HTML",
    (
        "PUT",
        "/api/media-blobs/{project_id}/{object_name}",
    ): "stands in for a presigned S3 URL: its expiry and HMAC signature authorise it (checked below)",
    (
        "GET",
        "/api/media-blobs/{project_id}/{object_name}",
    ): "stands in for a presigned S3 URL: its expiry and HMAC signature authorise it (checked below)",
    ("GET", "/static"): "CSS and JavaScript of the web UI",
    ("GET", "/auth/sign-in"): "the sign-in form",
    ("POST", "/auth/sign-in"): "signing in is how credentials are given",
    ("GET", "/auth/sign-up"): "the sign-up form",
    ("POST", "/auth/sign-up"): "creating an account (refused when sign-up is disabled)",
    ("POST", "/auth/sign-out"): "ends the caller's own session; without one there is nothing to end",
    (
        "GET",
        "/invitation/accept",
    ): "the emailed invitation link: its single-use token (stored hashed) authorises it",
    ("GET", "/auth/reset-password"): "the form that asks for a password-reset email",
    ("GET", "/auth/reset-password/confirm"): "the emailed reset link: its single-use token authorises it",
    (
        "GET",
        "/api/auth/signin/{provider}",
    ): "starts an SSO sign-in: sends the browser to the identity provider",
    (
        "GET",
        "/auth/sso-initiate",
    ): "Langfuse's shareable SSO start link, the same as /api/auth/signin/<provider>",
    (
        "GET",
        "/api/auth/callback/{provider}",
    ): "the identity provider's answer: authorised by the pending sign-in's state and browser-binding cookie",
}

# framework-added HEAD twins of GET routes are covered by their GET
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _flat_routes(routes) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, looking into included routers (FastAPI keeps them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            assert not prefix, (
                "the app includes its routers without a prefix; extend this walk if that changes"
            )
            yield from _flat_routes(nested.routes)
        elif isinstance(route, Mount):
            yield "GET", route.path
        else:
            for method in sorted(route.methods or ()):
                if method not in IGNORED_METHODS:
                    yield method, route.path


def app_routes(api) -> list[tuple[str, str]]:
    return sorted(set(_flat_routes(api.client.app.routes)))


def concrete(path: str) -> str:
    """A request path for a route pattern: every parameter becomes a plausible id."""
    return re.sub(r"\{[^}]+\}", "x-1", path)


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bad_credentials(api) -> dict[str, dict]:
    return {
        "none": {},
        "wrong secret for a real public key": _basic(api.public_key, api.secret_key + "x"),
        "unknown public key": _basic("pk-lf-unknown", api.secret_key),
        "empty secret": _basic(api.public_key, ""),
        "not base64": {"Authorization": "Basic !!!notbase64"},
        "no colon": {"Authorization": "Basic " + base64.b64encode(api.public_key.encode()).decode()},
        "unknown scheme": {"Authorization": "Token abc"},
        "bearer with a secret key": {"Authorization": f"Bearer {api.secret_key}"},
        "empty header": {"Authorization": ""},
    }


def _is_web(path: str) -> bool:
    return not path.startswith(("/api/", "/v1/"))


def test_public_list_matches_the_app(api):
    routes = set(app_routes(api))
    stale = set(PUBLIC) - routes
    assert not stale, f"listed as public but not served (remove them): {stale}"


def test_every_api_route_refuses_missing_and_wrong_credentials(api):
    checked = 0
    for method, path in app_routes(api):
        if (method, path) in PUBLIC or _is_web(path):
            continue
        for label, headers in bad_credentials(api).items():
            r = api.client.request(
                method, concrete(path), headers={**headers, "Content-Type": "application/json"}, content=b"{}"
            )
            assert r.status_code in (401, 403), (method, path, label, r.status_code, r.text[:300])
            assert "message" in r.json(), (method, path, label)
            checked += 1
    assert checked > 300  # ~80 API routes x 9 credentials: the walk did find the routes


def test_every_web_page_sends_the_anonymous_caller_to_sign_in(api):
    checked = 0
    for method, path in app_routes(api):
        if (method, path) in PUBLIC or not _is_web(path):
            continue
        r = api.client.request(
            method,
            concrete(path),
            follow_redirects=False,
            headers={"Accept": "text/html"},
            data={"name": "x"},
        )
        assert r.status_code in (302, 303, 307, 401, 403), (method, path, r.status_code, r.text[:300])
        if r.status_code in (302, 303, 307):
            assert r.headers["location"].startswith("/auth/sign-in"), (method, path, r.headers["location"])
        # an API key is no web session
        r = api.client.request(
            method,
            concrete(path),
            follow_redirects=False,
            auth=api.auth,
            headers={"Accept": "text/html"},
            data={"name": "x"},
        )
        assert r.status_code in (302, 303, 307, 401, 403), (method, path, r.status_code)
        checked += 1
    assert checked > 20


def test_media_blob_urls_refuse_a_missing_or_forged_signature(api):
    for method in ("GET", "PUT"):
        for query in ("", "?expires=9999999999&signature=forged", "?expires=1&signature="):
            r = api.client.request(
                method,
                f"/api/media-blobs/{api.project_id}/m-1.png{query}",
                content=b"x",
                headers={"Content-Type": "image/png"},
            )
            assert 400 <= r.status_code < 500, (method, query, r.status_code, r.text[:200])
