"""Blob-storage export integrations (api-semantics 5.14): one export configuration per project.

Managed with an organisation key for the organisation's projects. The secret access key is stored only
AES-256-GCM encrypted under ``ENCRYPTION_KEY`` (``common.secrets_box``) and never answered. On update, fields
the request omits that the spec marks as preserved (secret, ``exportSource``, ``exportFieldGroups``) keep their
values. The export job that reads these rows is not built yet (a later issue): ``syncStatus`` is ``disabled``
or ``idle`` until it runs, and no test upload is made when a configuration is saved.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from lightfuse.services.accounts.audit_log import Actor, record_audit
from lightfuse.services.auth.api_keys import OrgApiAuth
from lightfuse.services.common import secrets_box
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import bad, iso, not_found, parse_iso
from lightfuse.store.sql import integrations as store
from lightfuse.store.sql.transactions import write_transaction

TYPES = ("S3", "S3_COMPATIBLE", "AZURE_BLOB_STORAGE")
FREQUENCIES = ("every_20_minutes", "hourly", "daily", "weekly")
FILE_TYPES = ("JSON", "CSV", "JSONL", "PARQUET")
EXPORT_MODES = ("FULL_HISTORY", "FROM_TODAY", "FROM_CUSTOM_DATE")
SOURCES = ("LEGACY_TRACES_OBSERVATIONS", "OBSERVATIONS_V2", "LEGACY_TRACES_AND_ENRICHED_OBSERVATIONS")
FIELD_GROUPS = (
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "tools",
    "trace_context",
)
DEFAULT_SOURCE = "LEGACY_TRACES_OBSERVATIONS"  # self-hosted default (this store keeps the traces tables)
# a custom start date may lie up to 27 h ahead (time zones), as Langfuse allows
FUTURE_TOLERANCE_MS = 27 * 3600 * 1000
_AZURE_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_MAX_TEXT = 1024


def _enum(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in allowed:
        raise bad(f"{key} must be one of {', '.join(allowed)}")
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if not isinstance(value, bool):
        raise bad(f"{key} is required and must be a boolean")
    return value


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad(f"{key} must be a non-empty string" if required else f"{key} must be a string")
    if len(value) > _MAX_TEXT:
        raise bad(f"{key} must be at most {_MAX_TEXT} characters")
    return value


class BlobStorageIntegrations:
    def __init__(self, engine: Engine, encryption_key: str | None) -> None:
        self._engine = engine
        self._key = encryption_key

    # --- reads ----------------------------------------------------------------------------------------------

    def list(self, auth: OrgApiAuth) -> dict[str, Any]:
        with self._engine.connect() as conn:
            rows = store.list_blob_integrations(conn, auth.org_id)
        return {"data": [self._to_api(r) for r in rows]}

    def status(self, auth: OrgApiAuth, integration_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_blob_integration(conn, auth.org_id, integration_id)
        if row is None:
            raise not_found("Blob storage integration not found")
        return {
            "id": row["id"],
            "projectId": row["project_id"],
            "syncStatus": self._sync_status(row),
            "enabled": row["enabled"],
            "lastSyncAt": iso(row.get("last_sync_at")),
            "nextSyncAt": iso(row.get("next_sync_at")),
            "lastError": row.get("last_error"),
            "lastErrorAt": iso(row.get("last_error_at")),
        }

    @staticmethod
    def _sync_status(row: dict[str, Any]) -> str:
        if not row["enabled"]:
            return "disabled"
        if row.get("last_error"):
            return "error"
        next_sync = row.get("next_sync_at")
        if next_sync is not None and next_sync <= now_ms():
            return "queued"
        return "up_to_date" if row.get("last_sync_at") else "idle"

    @staticmethod
    def _to_api(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "projectId": row["project_id"],
            "type": row["type"],
            "bucketName": row["bucket_name"],
            "endpoint": row.get("endpoint"),
            "region": row["region"],
            "accessKeyId": row.get("access_key_id"),
            "prefix": row["prefix"],
            "exportFrequency": row["export_frequency"],
            "enabled": row["enabled"],
            "forcePathStyle": row["force_path_style"],
            "fileType": row["file_type"],
            "exportMode": row["export_mode"],
            "exportStartDate": iso(row.get("export_start_date")),
            "compressed": row["compressed"],
            "exportSource": row["export_source"],
            "exportFieldGroups": row.get("export_field_groups"),
            "nextSyncAt": iso(row.get("next_sync_at")),
            "lastSyncAt": iso(row.get("last_sync_at")),
            "lastError": row.get("last_error"),
            "lastErrorAt": iso(row.get("last_error_at")),
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["updated_at"]),
        }

    # --- writes ---------------------------------------------------------------------------------------------

    def _validated(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object")
        kind = _enum(body, "type", TYPES)
        bucket = _text(body, "bucketName", required=True) or ""
        if kind == "AZURE_BLOB_STORAGE" and not _AZURE_CONTAINER.match(bucket):
            raise bad(
                "bucketName must be a valid Azure container name (3-63 lowercase letters, digits and hyphens, "
                "starting and ending with a letter or digit, no consecutive hyphens)"
            )
        endpoint = _text(body, "endpoint")
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise bad("endpoint must be an http(s) URL")
        elif kind == "S3_COMPATIBLE":
            raise bad("endpoint is required for S3_COMPATIBLE")
        prefix = _text(body, "prefix") or ""
        if prefix and not prefix.endswith("/"):
            raise bad("prefix must end with a forward slash")
        mode = _enum(body, "exportMode", EXPORT_MODES)
        start = None
        if mode == "FROM_CUSTOM_DATE":
            if not body.get("exportStartDate"):
                raise bad("exportStartDate is required when exportMode is FROM_CUSTOM_DATE")
            start = parse_iso(body["exportStartDate"], "exportStartDate")
            if start > now_ms() + FUTURE_TOLERANCE_MS:
                raise bad("exportStartDate must not be in the future")
        elif body.get("exportStartDate") is not None:
            start = parse_iso(body["exportStartDate"], "exportStartDate")
        compressed = body.get("compressed")
        if compressed is not None and not isinstance(compressed, bool):
            raise bad("compressed must be a boolean")
        source = body.get("exportSource")
        if source is not None and source not in SOURCES:
            raise bad(f"exportSource must be one of {', '.join(SOURCES)}")
        groups = body.get("exportFieldGroups")
        if groups is not None:
            if source is None:
                raise bad("exportFieldGroups requires exportSource in the same request")
            if not isinstance(groups, list) or any(g not in FIELD_GROUPS for g in groups):
                raise bad(f"exportFieldGroups must be a list of {', '.join(FIELD_GROUPS)}")
            if "core" not in groups:
                raise bad("exportFieldGroups must include 'core'")
            groups = list(dict.fromkeys(groups))
        return {
            "type": kind,
            "bucket_name": bucket,
            "endpoint": endpoint or None,
            "region": _text(body, "region", required=True),
            "access_key_id": _text(body, "accessKeyId"),
            "secret": _text(body, "secretAccessKey"),
            "prefix": prefix,
            "export_frequency": _enum(body, "exportFrequency", FREQUENCIES),
            "enabled": _bool(body, "enabled"),
            "force_path_style": _bool(body, "forcePathStyle"),
            "file_type": _enum(body, "fileType", FILE_TYPES),
            "export_mode": mode,
            "export_start_date": start,
            "compressed": True if compressed is None else compressed,
            "export_source": source,
            "export_field_groups": groups,
        }

    def upsert(self, auth: OrgApiAuth, body: Any) -> dict[str, Any]:
        project_id = body.get("projectId") if isinstance(body, dict) else None
        if not isinstance(project_id, str) or not project_id:
            raise bad("projectId is required")
        values = self._validated(body)
        secret = values.pop("secret")
        now = now_ms()
        with write_transaction(self._engine) as conn:
            if not store.project_in_org(conn, auth.org_id, project_id):
                raise not_found("Project not found")
            current = store.get_blob_integration_of_project(conn, project_id)
            if secret is not None:
                if not self._key:
                    raise bad(
                        "The server has no ENCRYPTION_KEY configured, so secretAccessKey cannot be stored"
                    )
                values["secret_access_key_encrypted"] = secrets_box.encrypt(self._key, secret)
            elif current is None and values["type"] == "AZURE_BLOB_STORAGE":
                raise bad("secretAccessKey is required for AZURE_BLOB_STORAGE")
            if values["export_source"] is None:
                values["export_source"] = current["export_source"] if current else DEFAULT_SOURCE
                values.pop("export_field_groups")  # omitted: kept (update) or the default, all groups
            values["updated_at"] = now
            if current is None:
                values.update(id=str(uuid.uuid4()), project_id=project_id, created_at=now)
                store.insert_blob_integration(conn, values)
            else:
                store.update_blob_integration(conn, project_id, values)
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=Actor.api_key(auth.api_key_id, auth.public_key),
                action="blobStorageIntegration.update" if current else "blobStorageIntegration.create",
                resource_type="blobStorageIntegration",
                resource_id=project_id,
                project_id=project_id,
                after={
                    "type": values["type"],
                    "bucketName": values["bucket_name"],
                    "enabled": values["enabled"],
                },
            )
            row = store.get_blob_integration_of_project(conn, project_id)
        assert row is not None
        return self._to_api(row)

    def delete(self, auth: OrgApiAuth, integration_id: str) -> dict[str, Any]:
        with write_transaction(self._engine) as conn:
            row = store.get_blob_integration(conn, auth.org_id, integration_id)
            if row is None:
                raise not_found("Blob storage integration not found")
            store.delete_blob_integration(conn, row["project_id"])
            record_audit(
                conn,
                org_id=auth.org_id,
                actor=Actor.api_key(auth.api_key_id, auth.public_key),
                action="blobStorageIntegration.delete",
                resource_type="blobStorageIntegration",
                resource_id=row["project_id"],
                project_id=row["project_id"],
            )
        return {"message": "Blob storage integration deleted successfully"}

    def secret_of(self, project_id: str) -> str | None:
        """The decrypted secret access key, for the export job (later issue) and tests; never answered."""
        with self._engine.connect() as conn:
            row = store.get_blob_integration_of_project(conn, project_id)
        token = row.get("secret_access_key_encrypted") if row else None
        if not token:
            return None
        if not self._key:
            raise ValueError("ENCRYPTION_KEY is not configured")
        return secrets_box.decrypt(self._key, token)
