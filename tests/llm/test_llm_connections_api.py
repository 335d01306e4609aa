"""/api/public/llm-connections on both backends: upsert, list, delete, secrets sealed at rest and never
answered, the SSRF allow-list, and a playground call through the pinned client against the fake provider."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.fake_llm import FakeLlm

KEY = "ab" * 32


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    fake = FakeLlm(token_delay=0.01).start()
    try:
        yield fake
    finally:
        fake.stop()


def _harness(backend, **extra):
    from fastapi.testclient import TestClient

    from lightfuse.app import build_services, create_app
    from lightfuse.config import InitSettings, load_settings

    public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-1", project_id="project-1", project_public_key=public_key, project_secret_key=secret_key
    )
    settings = load_settings(**backend, init=init, **extra)
    services = build_services(settings)
    return TestClient(create_app(services), raise_server_exceptions=False), services, (public_key, secret_key)


@pytest.fixture
def llm_api(backend):
    client, services, auth = _harness(backend, encryption_key=KEY, llm_whitelisted_ips="127.0.0.1")
    with client:
        yield client, services, auth
    services.engine.dispose()


def _body(fake: FakeLlm, **over):
    body = {
        "provider": "local-gateway",
        "adapter": "openai",
        "secretKey": fake.api_key,
        "baseURL": fake.base_url,
        "customModels": ["gpt-4o-mini", "my-model"],
        "withDefaultModels": False,
        "extraHeaders": {"X-Team": "team-secret-value"},
    }
    body.update(over)
    return body


def test_upsert_list_delete_never_returns_secrets(llm_api, fake_llm):
    client, services, auth = llm_api
    created = client.put("/api/public/llm-connections", json=_body(fake_llm), auth=auth)
    assert created.status_code == 201, created.text
    conn = created.json()
    assert conn["provider"] == "local-gateway" and conn["adapter"] == "openai"
    assert conn["displaySecretKey"] == "..." + fake_llm.api_key[-4:]
    assert conn["extraHeaderKeys"] == ["X-Team"] and conn["customModels"] == ["gpt-4o-mini", "my-model"]
    assert conn["withDefaultModels"] is False and conn["baseURL"] == fake_llm.base_url
    assert "secretKey" not in conn and "extraHeaders" not in conn

    # upsert on the provider name: same id, 200
    again = client.put("/api/public/llm-connections", json=_body(fake_llm, customModels=["x"]), auth=auth)
    assert again.status_code == 200 and again.json()["id"] == conn["id"]
    assert again.json()["customModels"] == ["x"]

    listed = client.get("/api/public/llm-connections?page=1&limit=10", auth=auth)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["data"]] == [conn["id"]]
    assert listed.json()["meta"]["totalItems"] == 1
    for text in (created.text, again.text, listed.text):
        assert fake_llm.api_key not in text and "team-secret-value" not in text

    # at rest: versioned AES-256-GCM tokens (common/secrets_box), nothing readable, opened only with the key
    from lightfuse.services.common import secrets_box

    with services.engine.connect() as db:
        row = db.execute(sa.text("SELECT secret_key, extra_headers FROM llm_connections")).one()
    assert fake_llm.api_key not in row.secret_key and "team-secret-value" not in row.extra_headers
    assert row.secret_key.startswith("v1:") and row.extra_headers.startswith("v1:")
    assert secrets_box.decrypt(KEY, row.secret_key) == fake_llm.api_key
    with pytest.raises(ValueError):
        secrets_box.decrypt("0" * 64, row.secret_key)

    gone = client.delete(f"/api/public/llm-connections/{conn['id']}", auth=auth)
    assert gone.status_code == 200 and gone.json() == {"message": "LLM connection successfully deleted"}
    assert client.delete(f"/api/public/llm-connections/{conn['id']}", auth=auth).status_code == 404
    assert client.get("/api/public/llm-connections", auth=auth).json()["data"] == []


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"adapter": "gpt"}, "adapter must be one of"),
        ({"secretKey": ""}, "secretKey"),
        ({"provider": None}, "provider"),
        ({"baseURL": "ftp://x"}, "baseURL"),
        ({"customModels": "gpt-4o"}, "customModels"),
        ({"extraHeaders": {"X-A": 1}}, "extraHeaders"),
        ({"adapter": "bedrock", "config": None}, "bedrock"),
        ({"adapter": "anthropic", "config": {"region": "x"}}, "config is not supported"),
        ({"adapter": "azure", "baseURL": None}, "baseURL"),
    ],
)
def test_bad_input_is_a_langfuse_400(llm_api, fake_llm, change, fragment):
    client, _services, auth = llm_api
    r = client.put("/api/public/llm-connections", json=_body(fake_llm, **change), auth=auth)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError" and fragment in r.json()["message"]


def test_list_needs_credentials_and_valid_paging(llm_api):
    client, _services, auth = llm_api
    assert client.get("/api/public/llm-connections").status_code == 401
    assert client.get("/api/public/llm-connections?limit=0", auth=auth).status_code == 400


def test_internal_base_url_is_refused_without_the_allow_list(backend, fake_llm):
    client, services, auth = _harness(backend, encryption_key=KEY)
    with client:
        r = client.put("/api/public/llm-connections", json=_body(fake_llm), auth=auth)
    services.engine.dispose()
    assert r.status_code == 400
    assert "non-public address" in r.json()["message"]
    assert "LANGFUSE_LLM_CONNECTION_WHITELISTED" in r.json()["message"]


def test_without_encryption_key_secrets_are_not_stored(tmp_path, pg_database_url, fake_llm):
    backend = {
        "data_dir": tmp_path / "data",
        "database_url": pg_database_url.replace("postgresql+psycopg://", "postgresql://"),
        "salt": "s",
        "nextauth_secret": "n",
    }
    client, services, auth = _harness(backend, llm_whitelisted_ips="127.0.0.1")
    with client:
        r = client.put("/api/public/llm-connections", json=_body(fake_llm), auth=auth)
    services.engine.dispose()
    assert r.status_code == 400 and "ENCRYPTION_KEY" in r.json()["message"]


def _run(services, connection_id: str, **over) -> list[dict]:
    body = {
        "connectionId": connection_id,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello {{who}}"}],
        "variables": {"who": "world"},
        "params": {"temperature": 0.2, "max_tokens": 50},
    }
    body.update(over)
    run = services.playground.prepare("project-1", body)

    async def collect():
        return [e async for e in services.playground.stream("project-1", None, run)]

    return asyncio.run(collect())


def test_playground_call_sends_key_and_headers_and_records_a_generation(llm_api, fake_llm):
    client, services, auth = llm_api
    conn = client.put("/api/public/llm-connections", json=_body(fake_llm), auth=auth).json()
    events = _run(services, conn["id"])
    text = "".join(e["text"] for e in events if e["type"] == "delta")
    assert text == "Echo: hello world"
    assert events[-1]["type"] == "done" and events[-1]["usage"] == {"input": 12, "output": 3}
    sent = fake_llm.requests[-1]
    assert sent["headers"]["x-team"] == "team-secret-value"
    assert sent["body"]["stream_options"] == {"include_usage": True} and sent["body"]["temperature"] == 0.2

    trace_id = events[-1]["traceId"]
    trace = client.get(f"/api/public/traces/{trace_id}", auth=auth)
    assert trace.status_code == 200, trace.text
    gen = trace.json()["observations"][0]
    assert gen["type"] == "GENERATION" and gen["model"] == "gpt-4o-mini"
    assert gen["usageDetails"]["input"] == 12 and gen["calculatedTotalCost"] > 0

    # tools and structured output reach the provider
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    events = _run(services, conn["id"], tools=[tool])
    calls = [e for e in events if e["type"] == "tool_call"]
    assert calls and calls[0]["name"] == "lookup"
    events = _run(services, conn["id"], jsonSchema={"type": "object"})
    assert "".join(e["text"] for e in events if e["type"] == "delta") == '{"echo": "hello world"}'
    assert fake_llm.requests[-1]["body"]["response_format"]["type"] == "json_schema"


def test_the_allow_list_is_checked_again_at_connect_time(llm_api, fake_llm):
    """A saved connection whose host is no longer allowed (or now resolves elsewhere) is refused when dialled."""
    from lightfuse.services.common.outbound import LLM_VARIABLES, OutboundPolicy

    client, services, auth = llm_api
    conn = client.put("/api/public/llm-connections", json=_body(fake_llm), auth=auth).json()
    services.llm_connections.policy = OutboundPolicy(env_prefix=LLM_VARIABLES)
    before = len(fake_llm.requests)
    events = _run(services, conn["id"])
    assert events[-1]["type"] == "error" and "non-public address" in events[-1]["message"]
    assert len(fake_llm.requests) == before


def test_anthropic_and_azure_adapters_stream_through_their_sdks(llm_api, fake_llm):
    """The Anthropic SDK (Messages API events) and the AzureOpenAI client (deployment path, api-key header)."""
    client, services, auth = llm_api
    anthropic_conn = client.put(
        "/api/public/llm-connections",
        json=_body(
            fake_llm, provider="claude", adapter="anthropic", baseURL=fake_llm.base_url.removesuffix("/v1")
        ),
        auth=auth,
    ).json()
    events = _run(
        services,
        anthropic_conn["id"],
        model="claude-3-5-haiku-latest",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello {{who}}"}],
    )
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Echo: hello world"
    assert events[-1]["type"] == "done" and events[-1]["usage"] == {"input": 12, "output": 3}
    sent = fake_llm.requests[-1]
    # the key travels as x-api-key or (newer SDK releases) a Bearer token; either way through Anthropic's SDK
    key_headers = (sent["headers"].get("x-api-key"), sent["headers"].get("authorization"))
    assert fake_llm.api_key in key_headers or f"Bearer {fake_llm.api_key}" in key_headers
    assert "anthropic-version" in sent["headers"] and sent["headers"]["x-team"] == "team-secret-value"
    assert sent["body"]["system"] == "be brief" and sent["body"]["max_tokens"] == 50
    assert sent["body"]["temperature"] == 0.2
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    events = _run(services, anthropic_conn["id"], model="claude-3-5-haiku-latest", tools=[tool])
    calls = [e for e in events if e["type"] == "tool_call"]
    assert (
        calls[0]["name"] == "lookup" and "".join(c["arguments"] for c in calls) == '{"echo": "hello world"}'
    )

    azure_conn = client.put(
        "/api/public/llm-connections",
        json=_body(
            fake_llm, provider="azure", adapter="azure", baseURL=fake_llm.base_url.removesuffix("/v1")
        ),
        auth=auth,
    ).json()
    events = _run(services, azure_conn["id"], model="my-deployment")
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Echo: hello world"
    sent = fake_llm.requests[-1]
    assert sent["headers"]["api-key"] == fake_llm.api_key and "authorization" not in sent["headers"]
