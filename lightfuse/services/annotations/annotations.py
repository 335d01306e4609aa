"""Comments (api-semantics 5.9) and annotation queues with their items and assignments (5.10)."""

from __future__ import annotations

import uuid
from typing import Any, Literal, overload

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import (
    bad,
    iso,
    json_object,
    not_found,
    optional_str,
    required_str,
)
from lightfuse.store.sql import annotations as store
from lightfuse.store.sql.transactions import write_transaction

COMMENT_OBJECT_TYPES = ("TRACE", "OBSERVATION", "SESSION", "PROMPT")
QUEUE_OBJECT_TYPES = ("TRACE", "OBSERVATION", "SESSION")
QUEUE_STATUSES = ("PENDING", "COMPLETED")
COMMENT_MAX = 5000
COMMENT_NOT_FOUND = "Comment not found within authorized project"
QUEUE_NOT_FOUND = "Annotation queue not found"
QUEUE_ITEM_NOT_FOUND = "Annotation queue item not found"


def comment_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "objectType": row["object_type"],
        "objectId": row["object_id"],
        "content": row["content"],
        "authorUserId": row.get("author_user_id"),
    }


def queue_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row.get("description"),
        "scoreConfigIds": list(row.get("score_config_ids") or []),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def queue_item_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "queueId": row["queue_id"],
        "objectId": row["object_id"],
        "objectType": row["object_type"],
        "status": row["status"],
        "completedAt": iso(row.get("completed_at")),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


@overload
def _choice(
    body: dict[str, Any], key: str, allowed: tuple[str, ...], *, required: Literal[True] = ...
) -> str: ...
@overload
def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], *, required: bool) -> str | None: ...
def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if value not in allowed:
        raise bad(f"{key} must be one of {', '.join(allowed)}")
    return value


class AnnotationService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- comments -------------------------------------------------------------------------------------------

    def create_comment(self, project_id: str, body: Any) -> dict[str, str]:
        """The body's projectId is ignored: a comment always belongs to the key's project."""
        body = json_object(body)
        object_type = _choice(body, "objectType", COMMENT_OBJECT_TYPES)
        object_id = required_str(body, "objectId")
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise bad("content is required and must be a non-empty string")
        if len(content) > COMMENT_MAX:
            raise bad(f"content must be at most {COMMENT_MAX} characters")
        author = optional_str(body, "authorUserId")
        with self._engine.connect() as conn:
            if not store.object_exists(conn, project_id, object_type, object_id):
                raise not_found(f"No {str(object_type).lower()} with id {object_id} in project {project_id}")
            if author is not None and not store.is_org_member(conn, project_id, author):
                raise bad(f"User {author} is not a member of the organization of project {project_id}")
        now = now_ms()
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "object_type": object_type,
            "object_id": object_id,
            "content": content,
            "author_user_id": author,
            "created_at": now,
            "updated_at": now,
        }
        with self._engine.begin() as conn:
            store.create_comment(conn, row)
        return {"id": row["id"]}

    def get_comment(self, project_id: str, comment_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_comment(conn, project_id, comment_id)
        if row is None:
            raise not_found(COMMENT_NOT_FOUND)
        return comment_to_api(row)

    def list_comments(
        self,
        project_id: str,
        *,
        object_type: str | None,
        object_id: str | None,
        author_user_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict], int]:
        if object_type is not None and object_type not in COMMENT_OBJECT_TYPES:
            raise bad(f"objectType must be one of {', '.join(COMMENT_OBJECT_TYPES)}")
        if object_id is not None and object_type is None:
            raise bad("objectType is required when objectId is given")
        with self._engine.connect() as conn:
            rows, total = store.list_comments(
                conn,
                project_id,
                object_type=object_type,
                object_id=object_id,
                author_user_id=author_user_id,
                limit=limit,
                offset=offset,
            )
        return [comment_to_api(r) for r in rows], total

    # --- queues ---------------------------------------------------------------------------------------------

    def create_queue(self, project_id: str, body: Any) -> dict[str, Any]:
        body = json_object(body)
        name = required_str(body, "name", max_len=255)
        description = optional_str(body, "description")
        config_ids = body.get("scoreConfigIds")
        if not isinstance(config_ids, list) or not all(isinstance(c, str) for c in config_ids):
            raise bad("scoreConfigIds must be an array of score config ids")
        config_ids = list(dict.fromkeys(config_ids))
        now = now_ms()
        row = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "name": name,
            "description": description,
            "score_config_ids": config_ids,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self._engine) as conn:
            missing = set(config_ids) - store.existing_score_config_ids(conn, project_id, config_ids)
            if missing:
                raise bad(f"Score config(s) not found in project: {', '.join(sorted(missing))}")
            if store.queue_name_taken(conn, project_id, name):
                raise bad("A queue with this name already exists.")
            store.create_queue(conn, row)
        return queue_to_api(row)

    def _queue(self, conn, project_id: str, queue_id: str) -> dict[str, Any]:
        row = store.get_queue(conn, project_id, queue_id)
        if row is None:
            raise not_found(QUEUE_NOT_FOUND)
        return row

    def get_queue(self, project_id: str, queue_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return queue_to_api(self._queue(conn, project_id, queue_id))

    def list_queues(self, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
        with self._engine.connect() as conn:
            rows, total = store.list_queues(conn, project_id, limit, offset)
        return [queue_to_api(r) for r in rows], total

    # --- queue items ----------------------------------------------------------------------------------------

    def create_queue_item(self, project_id: str, queue_id: str, body: Any) -> dict[str, Any]:
        body = json_object(body)
        object_id = required_str(body, "objectId")
        object_type = _choice(body, "objectType", QUEUE_OBJECT_TYPES)
        status = _choice(body, "status", QUEUE_STATUSES, required=False) or "PENDING"
        now = now_ms()
        row = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "queue_id": queue_id,
            "object_id": object_id,
            "object_type": object_type,
            "status": status,
            "completed_at": now if status == "COMPLETED" else None,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self._engine) as conn:
            self._queue(conn, project_id, queue_id)
            store.create_queue_item(conn, row)
        return queue_item_to_api(row)

    def list_queue_items(
        self, project_id: str, queue_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[dict], int]:
        if status is not None and status not in QUEUE_STATUSES:
            raise bad(f"status must be one of {', '.join(QUEUE_STATUSES)}")
        with self._engine.connect() as conn:
            self._queue(conn, project_id, queue_id)
            rows, total = store.list_queue_items(conn, project_id, queue_id, status, limit, offset)
        return [queue_item_to_api(r) for r in rows], total

    def get_queue_item(self, project_id: str, queue_id: str, item_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_queue_item(conn, project_id, queue_id, item_id)
        if row is None:
            raise not_found(QUEUE_ITEM_NOT_FOUND)
        return queue_item_to_api(row)

    def update_queue_item(self, project_id: str, queue_id: str, item_id: str, body: Any) -> dict[str, Any]:
        body = json_object(body)
        status = _choice(body, "status", QUEUE_STATUSES, required=False)
        now = now_ms()
        with write_transaction(self._engine) as conn:
            row = store.get_queue_item(conn, project_id, queue_id, item_id)
            if row is None:
                raise not_found(QUEUE_ITEM_NOT_FOUND)
            changes: dict[str, Any] = {"updated_at": now}
            if status is not None and status != row["status"]:
                changes["status"] = status
                changes["completed_at"] = now if status == "COMPLETED" else None
            store.update_queue_item(conn, item_id, changes)
        return queue_item_to_api({**row, **changes})

    def delete_queue_item(self, project_id: str, queue_id: str, item_id: str) -> dict[str, Any]:
        with self._engine.begin() as conn:
            if not store.delete_queue_item(conn, project_id, queue_id, item_id):
                raise not_found(QUEUE_ITEM_NOT_FOUND)
        return {"success": True, "message": "Successfully deleted annotation queue item"}

    # --- assignments ----------------------------------------------------------------------------------------

    def _user_id(self, body: Any) -> str:
        return required_str(json_object(body), "userId")

    def assign(self, project_id: str, queue_id: str, body: Any) -> dict[str, str]:
        user_id = self._user_id(body)
        with write_transaction(self._engine) as conn:
            self._queue(conn, project_id, queue_id)
            if not store.is_org_member(conn, project_id, user_id):
                raise bad(f"User {user_id} is not a member of the organization of project {project_id}")
            store.assign_user(
                conn,
                {"project_id": project_id, "queue_id": queue_id, "user_id": user_id, "created_at": now_ms()},
            )
        return {"userId": user_id, "queueId": queue_id, "projectId": project_id}

    def unassign(self, project_id: str, queue_id: str, body: Any) -> dict[str, bool]:
        user_id = self._user_id(body)
        with write_transaction(self._engine) as conn:
            self._queue(conn, project_id, queue_id)
            store.unassign_user(conn, project_id, queue_id, user_id)
        return {"success": True}
