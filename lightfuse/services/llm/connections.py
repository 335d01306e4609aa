"""LLM connections: per-project provider keys, validated, sealed with ENCRYPTION_KEY, never handed back.

``upsert`` is keyed by (project, provider name) as in Langfuse's public API; the answer carries the masked
key (``displaySecretKey``) and the names of the extra headers, never a secret. A base URL is checked against
the outbound allow-list when it is saved (so a connection to an internal address is refused with a clear 400)
and again at connect time by the pinned transport (``providers.py``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from lightfuse.services.common import secrets_box
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.outbound import OutboundPolicy, OutboundRefused
from lightfuse.services.common.resources import RequestError, bad
from lightfuse.services.common.rows import iso_ms
from lightfuse.store.sql import llm_connections as store
from lightfuse.store.sql.transactions import write_transaction

ADAPTERS = ("anthropic", "openai", "azure", "bedrock", "google-vertex-ai", "google-ai-studio")
# adapters the playground can call (providers.py); the others are stored for API parity but not offered
CALLABLE_ADAPTERS = ("openai", "azure", "anthropic", "google-ai-studio")
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini"),
    "anthropic": ("claude-3-5-haiku-latest", "claude-3-7-sonnet-latest", "claude-sonnet-4-0"),
    "google-ai-studio": ("gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro"),
    # Azure model names are the customer's deployment names: no defaults
    "azure": (),
    "bedrock": (),
    "google-vertex-ai": (),
}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_MAX_MODELS = 200


@dataclass(frozen=True)
class CallableConnection:
    """A connection with its secrets opened, for one provider call; never serialised."""

    id: str
    provider: str
    adapter: str
    secret_key: str
    base_url: str | None
    extra_headers: dict[str, str]
    config: dict[str, Any] | None
    models: tuple[str, ...]


def mask_secret(secret: str) -> str:
    """What the UI and API show of a key: its last four characters, and none of a short one."""
    return "..." + (secret[-4:] if len(secret) >= 16 else "")


def connection_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "provider": row["provider"],
        "adapter": row["adapter"],
        "displaySecretKey": row["display_secret_key"],
        "baseURL": row["base_url"],
        "customModels": list(row["custom_models"] or []),
        "withDefaultModels": bool(row["with_default_models"]),
        "extraHeaderKeys": list(row["extra_header_keys"] or []),
        "config": row["config"],
        "createdAt": iso_ms(row["created_at"]),
        "updatedAt": iso_ms(row["updated_at"]),
    }


def models_of(row: dict[str, Any]) -> tuple[str, ...]:
    defaults = DEFAULT_MODELS.get(row["adapter"], ()) if row["with_default_models"] else ()
    custom = tuple(row["custom_models"] or ())
    return custom + tuple(m for m in defaults if m not in custom)


def _string(body: dict, key: str, *, required: bool, max_len: int) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{key} is required and must be a non-empty string")
    if len(value) > max_len:
        raise bad(f"{key} must be at most {max_len} characters")
    return value.strip()


def _config(adapter: str, config: Any) -> dict[str, Any] | None:
    if config is None and adapter == "bedrock":
        raise bad('config is required for bedrock: {"region": "<aws-region>"}')
    if config is None:
        return None
    if not isinstance(config, dict):
        raise bad("config must be an object or null")
    if adapter == "bedrock":
        region = config.get("region")
        if set(config) != {"region"} or not isinstance(region, str) or not region:
            raise bad('config for bedrock must be {"region": "<aws-region>"}')
    elif adapter == "openai":
        if set(config) != {"useResponsesApi"} or not isinstance(config["useResponsesApi"], bool):
            raise bad('config for openai must be {"useResponsesApi": <boolean>} or null')
    elif adapter == "google-vertex-ai":
        location = config.get("location")
        if set(config) != {"location"} or not isinstance(location, str) or not location:
            raise bad('config for google-vertex-ai must be {"location": "<gcp-location>"} or null')
    else:
        raise bad(f"config is not supported for the {adapter} adapter; omit it or send null")
    return config


def validate_upsert(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    provider = _string(body, "provider", required=True, max_len=255)
    adapter = body.get("adapter")
    if adapter not in ADAPTERS:
        raise bad(f"adapter must be one of {', '.join(ADAPTERS)}")
    secret = body.get("secretKey")
    if not isinstance(secret, str) or not secret.strip() or len(secret) > 8192:
        raise bad("secretKey is required and must be a non-empty string (at most 8192 characters)")
    base_url = _string(body, "baseURL", required=adapter == "azure", max_len=2048)
    if base_url is not None and not re.match(r"^https?://[^/\s]+", base_url):
        raise bad("baseURL must be an http(s) URL")
    models = body.get("customModels")
    if models is None:
        models = []
    if not isinstance(models, list) or len(models) > _MAX_MODELS:
        raise bad(f"customModels must be a list of at most {_MAX_MODELS} model names")
    if not all(isinstance(m, str) and m.strip() and len(m) <= 255 for m in models):
        raise bad("customModels must hold non-empty strings of at most 255 characters")
    with_defaults = body.get("withDefaultModels")
    if with_defaults is None:
        with_defaults = True
    if not isinstance(with_defaults, bool):
        raise bad("withDefaultModels must be a boolean")
    headers = body.get("extraHeaders")
    if headers is not None:
        if not isinstance(headers, dict) or len(headers) > 50:
            raise bad("extraHeaders must be an object of at most 50 string headers")
        for name, value in headers.items():
            if not _HEADER_NAME.match(name) or not isinstance(value, str) or len(value) > 8192:
                raise bad("extraHeaders must map header names to string values")
            if "\r" in value or "\n" in value:
                raise bad("extraHeaders values must not contain line breaks")
    return {
        "provider": provider,
        "adapter": adapter,
        "secret": secret.strip(),
        "base_url": base_url.rstrip("/") if base_url else None,
        "custom_models": list(dict.fromkeys(m.strip() for m in models)),
        "with_default_models": with_defaults,
        "extra_headers": headers or None,
        "config": _config(adapter, body.get("config")),
    }


class LlmConnections:
    def __init__(self, engine: Engine, encryption_key: str | None, policy: OutboundPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self._key = encryption_key

    def _sealing_key(self) -> str:
        if not self._key or not _HEX64.match(self._key):
            raise bad(
                "ENCRYPTION_KEY must be set to 64 hexadecimal characters to store LLM connection secrets "
                "(generate one with `openssl rand -hex 32`)"
            )
        return self._key

    def check_base_url(self, base_url: str | None) -> None:
        if base_url is None:
            return
        try:
            self.policy.check_url(base_url)
        except OutboundRefused as exc:
            raise bad(f"baseURL refused: {exc}") from None

    def page(self, project_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.engine.connect() as conn:
            rows, total = store.list_connections(conn, project_id, limit, offset)
        return [connection_to_api(r) for r in rows], total

    def list_rows(self, project_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows, _ = store.list_connections(conn, project_id, 1000, 0)
        return rows

    def upsert(self, project_id: str, body: Any) -> tuple[dict[str, Any], bool]:
        """The connection as the API shows it, and whether it was created (201) rather than updated."""
        values = validate_upsert(body)
        key = self._sealing_key()
        self.check_base_url(values["base_url"])
        headers = values.pop("extra_headers")
        secret = values.pop("secret")
        now = now_ms()
        row = {
            **values,
            "secret_key": secrets_box.encrypt(key, secret),
            "display_secret_key": mask_secret(secret),
            "extra_headers": secrets_box.encrypt(key, orjson.dumps(headers).decode()) if headers else None,
            "extra_header_keys": sorted(headers or {}),
            "updated_at": now,
        }
        with write_transaction(self.engine) as conn:
            existing = store.get_by_provider(conn, project_id, values["provider"])
            if existing is None:
                row.update(id=str(uuid.uuid4()), project_id=project_id, created_at=now)
                store.insert(conn, row)
            else:
                store.update(conn, existing["id"], row)
                row = {**existing, **row}
        return connection_to_api(row), existing is None

    def delete(self, project_id: str, connection_id: str) -> bool:
        with write_transaction(self.engine) as conn:
            return store.delete_connection(conn, project_id, connection_id)

    def for_call(self, project_id: str, connection_id: str) -> CallableConnection:
        with self.engine.connect() as conn:
            row = store.get_by_id(conn, project_id, connection_id)
        if row is None:
            raise RequestError(404, "LLM connection not found within authorized project")
        if row["adapter"] not in CALLABLE_ADAPTERS:
            raise bad(f"the {row['adapter']} adapter is not supported by the playground yet")
        key = self._sealing_key()
        try:
            secret = secrets_box.decrypt(key, row["secret_key"])
            headers = (
                orjson.loads(secrets_box.decrypt(key, row["extra_headers"])) if row["extra_headers"] else {}
            )
        except ValueError as exc:
            raise bad(f"the stored key of {row['provider']} cannot be read: {exc}") from None
        return CallableConnection(
            id=row["id"],
            provider=row["provider"],
            adapter=row["adapter"],
            secret_key=secret,
            base_url=row["base_url"],
            extra_headers=headers,
            config=row["config"],
            models=models_of(row),
        )
