"""Prompt management service (api-semantics 6): versions and labels, tags, dependent checks, read cache.

Rules kept here (content validation and dependency resolution live in ``content.py``):

* a new version is max(version)+1 of its name, takes the given labels plus ``latest``, and those labels leave
  every other version (a label lives on one version of a name); the type of a name never changes;
* tags belong to the name: given tags replace them on every version, omitted tags are inherited;
* when the version carrying ``latest`` is deleted, the newest remaining version takes the label over;
* a write (create, label change, delete) is refused when any prompt that depends on the changed name - directly
  or through other prompts - would no longer resolve. The check runs inside the write transaction on the
  changed data, so it sees exactly what readers will see after the commit.

Resolved reads are cached in-process per (project, name, version|label), so a hit costs no database work. An
entry carries the project's prompt revision (``store.sql.prompts.bump_revision``). Writes made through this
service take effect at once (the embedded single-process mode is always exact); the stored revision is
re-read at most every ``revalidate_seconds`` per project, which bounds how long a write made by *another*
process sharing the database (scaled-out web processes) can go unseen. Checking it on every read would cost
a query and, on Postgres, a pooled connection per prompt fetch.
"""

from __future__ import annotations

import builtins
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from lightfuse.services.common.change_events import ChangeListener
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.rows import iso_ms
from lightfuse.services.prompts.content import (
    LATEST,
    MAX_DEPTH,
    PRODUCTION,
    PromptError,
    PromptNotFound,
    Resolver,
    dedupe,
    not_found_message,
    parse_dependency_tags,
    validate_create,
    validate_labels,
)
from lightfuse.store.sql import prompt_pages as page_store
from lightfuse.store.sql import prompts as store
from lightfuse.store.sql.filters import QueryError, parse_filter

# re-exported for the HTTP layer, which must not import the store
from lightfuse.store.sql.prompts import PromptListQuery

__all__ = ["PromptError", "PromptListQuery", "PromptNotFound", "PromptService", "ProtectedLabelError"]


class ProtectedLabelError(PromptError):
    """A UI user without ``promptProtectedLabels:CUD`` touched a protected label."""

    status = 403


def _iso(ms: int) -> str:
    return iso_ms(ms) or ""


# --------------------------------------------------------------------------------------------------------------
# API objects
# --------------------------------------------------------------------------------------------------------------

_NO_GRAPH = object()


def prompt_to_api(row: dict[str, Any], content: Any = None, graph: Any = _NO_GRAPH) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "projectId": row["project_id"],
        "createdBy": row["created_by"],
        "prompt": row["prompt"] if content is None else content,
        "name": row["name"],
        "version": row["version"],
        "type": row["type"],
        "isActive": PRODUCTION in row["labels"],
        "config": row["config"],
        "tags": row["tags"],
        "labels": row["labels"],
        "commitMessage": row["commit_message"],
    }
    if graph is not _NO_GRAPH:
        out["resolutionGraph"] = graph
    return out


def _list_item(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """One PromptMeta from the matching versions of a name (oldest first)."""
    last = versions[-1]
    return {
        "name": last["name"],
        "type": last["type"],
        "versions": [v["version"] for v in versions],
        "labels": sorted({label for v in versions for label in v["labels"]}),
        "tags": last["tags"],
        "lastUpdatedAt": _iso(max(v["updated_at"] for v in versions)),
        "lastConfig": last["config"],
    }


# --------------------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------------------


class PromptService:
    """Prompt reads and writes for the public API. Blocking: call from a worker thread."""

    def __init__(
        self,
        engine: Engine,
        cache_size: int = 4096,
        revalidate_seconds: float = 1.0,
        listeners: Sequence[ChangeListener] = (),
    ) -> None:
        self._engine = engine
        # told of every version created, relabelled or deleted, inside the write transaction (change_events)
        self.listeners: builtins.list[ChangeListener] = builtins.list(listeners)
        self._cache_size = cache_size
        self.revalidate_seconds = revalidate_seconds
        # (project, name, version, label) -> (revision, API object or None for "not found")
        self._cache: OrderedDict[tuple, tuple[int, dict[str, Any] | None]] = OrderedDict()
        # project -> (latest revision seen, monotonic time it was read from the database)
        self._revisions: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple, revision: int) -> tuple[bool, dict[str, Any] | None]:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or hit[0] != revision:
                return False, None
            self._cache.move_to_end(key)
            return True, hit[1]

    def _fresh_revision(self, project_id: str) -> int | None:
        with self._lock:
            seen = self._revisions.get(project_id)
        if seen is not None and time.monotonic() - seen[1] < self.revalidate_seconds:
            return seen[0]
        return None

    def _saw_revision(self, project_id: str, revision: int) -> None:
        with self._lock:
            seen = self._revisions.get(project_id)
            # revisions only grow: a reader that read an older one must not roll back a writer's newer one
            if seen is None or revision >= seen[0]:
                self._revisions[project_id] = (revision, time.monotonic())

    # --- reads ----------------------------------------------------------------------------------------------

    def get(
        self,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        resolve: bool = True,
    ) -> dict[str, Any]:
        """A version by number or label (neither: ``production``); raises PromptNotFound."""
        if version is not None and label is not None:
            raise PromptError("Cannot specify both version and label")
        if version is None and label is None:
            label = PRODUCTION
        key = (project_id, name, version, label)
        if resolve and (revision := self._fresh_revision(project_id)) is not None:
            found, value = self._cached(key, revision)
            if found:
                return self._found(value, name, version, label)
        with self._engine.connect() as conn:
            # the revision is read before the data: data newer than its revision only costs a later miss
            revision = store.get_revision(conn, project_id)
            self._saw_revision(project_id, revision)
            if resolve:
                found, value = self._cached(key, revision)
                if found:
                    return self._found(value, name, version, label)
            row = store.get_prompt(conn, project_id, name, version=version, label=label)
            if row is None:
                value = None
            elif resolve:
                content, graph = Resolver(conn, project_id).resolve(row)
                value = prompt_to_api(row, content, graph)
            else:
                return prompt_to_api(row, graph=None)
        if resolve:
            with self._lock:
                self._cache[key] = (revision, value)
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return self._found(value, name, version, label)

    @staticmethod
    def _found(
        value: dict[str, Any] | None, name: str, version: int | None, label: str | None
    ) -> dict[str, Any]:
        if value is None:
            raise PromptNotFound(not_found_message(name, version, label))
        return value

    def list(self, project_id: str, query: PromptListQuery, page: int, limit: int) -> dict[str, Any]:
        with self._engine.connect() as conn:
            try:
                names, total = store.list_prompt_names(conn, project_id, query, limit, (page - 1) * limit)
                rows = store.list_matching_versions(conn, project_id, query, names)
            except QueryError as exc:
                raise PromptError(str(exc)) from None
        by_name: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_name.setdefault(row["name"], []).append(row)
        meta = {"page": page, "limit": limit, "totalItems": total, "totalPages": math.ceil(total / limit)}
        data = [_list_item(by_name[n]) for n in names if n in by_name]
        return {"data": data, "meta": meta, "pagination": dict(meta)}

    @staticmethod
    def parse_filter(raw: str | None) -> builtins.list:
        try:
            return parse_filter(raw)
        except QueryError as exc:
            raise PromptError(str(exc)) from None

    # --- writes ---------------------------------------------------------------------------------------------

    def _write(self, project_id: str, work: Callable[[Connection], Any]) -> Any:
        try:
            with self._engine.begin() as conn:
                revision = store.bump_revision(conn, project_id)
                result = work(conn)
        except IntegrityError:
            raise PromptError("The prompt was changed concurrently; please retry") from None
        self._saw_revision(project_id, revision)
        with self._lock:
            # entries of this project are stale by revision anyway; dropping them frees the memory now
            for key in [k for k in self._cache if k[0] == project_id]:
                del self._cache[key]
        return result

    def _announce(self, conn: Connection, project_id: str, action: str, row: dict[str, Any]) -> None:
        event = {"type": "prompt-version", "action": action, "prompt": prompt_to_api(row)}
        for listener in self.listeners:
            listener(conn, project_id, event)

    def create(
        self,
        project_id: str,
        body: Any,
        *,
        legacy: bool = False,
        created_by: str = "API",
        may_move_protected: bool = True,
    ) -> dict[str, Any]:
        """A new version. ``created_by`` is a user id for the UI; a UI user without ``may_move_protected``
        cannot give the new version a protected label (API keys can: api-semantics 6)."""
        values = validate_create(body, legacy=legacy)
        values["created_by"] = created_by

        def work(conn: Connection) -> dict[str, Any]:
            if not may_move_protected:
                self._refuse_protected(conn, project_id, set(values["labels"]))
            return self._create(conn, project_id, values)

        return self._write(project_id, work)

    @staticmethod
    def _refuse_protected(conn: Connection, project_id: str, changed: set[str]) -> None:
        hit = sorted(changed & set(page_store.list_protected_labels(conn, project_id)))
        if hit:
            raise ProtectedLabelError(
                f"Only OWNER and ADMIN can set or remove the protected label(s): {', '.join(hit)}"
            )

    def set_labels(
        self, project_id: str, name: str, version: int, labels: Any, *, may_move_protected: bool = True
    ) -> dict[str, Any]:
        """Give a version exactly ``labels`` (plus ``latest`` where it already is): added labels move here
        from other versions, missing ones leave this version. Protected labels need ``may_move_protected``."""
        wanted = validate_labels(labels, allow_latest=False)

        def work(conn: Connection) -> dict[str, Any]:
            versions = store.list_versions(conn, project_id, name)
            target = next((v for v in versions if v["version"] == version), None)
            if target is None:
                raise PromptNotFound(not_found_message(name, version, None))
            target_labels_before = list(target["labels"])
            current = {x for x in target["labels"] if x != LATEST}
            if not may_move_protected:
                self._refuse_protected(conn, project_id, current ^ set(wanted))
            now = now_ms()
            self._take_labels(conn, [v for v in versions if v is not target], wanted, now)
            kept = [*wanted, *([LATEST] if LATEST in target["labels"] else [])]
            target["labels"], target["updated_at"] = kept, now
            store.update_prompt(conn, target["id"], {"labels": kept, "updated_at": now})
            self._check_dependents(conn, project_id, name)
            if set(kept) != set(target_labels_before):  # as the API's label move: one `updated` event
                self._announce(conn, project_id, "updated", target)
            return prompt_to_api(target)

        return self._write(project_id, work)

    def _create(self, conn: Connection, project_id: str, values: dict[str, Any]) -> dict[str, Any]:
        name, now = values["name"], now_ms()
        versions = store.list_versions(conn, project_id, name)
        tags = values["tags"]
        if versions:
            if versions[0]["type"] != values["type"]:
                raise PromptError(
                    f"Previous versions of '{name}' are {versions[0]['type']} prompts; the type of a prompt "
                    "cannot change. Create a prompt with a different name instead."
                )
            if tags is None:
                tags = versions[0]["tags"]
            elif tags != versions[0]["tags"]:
                store.set_tags(conn, project_id, name, tags, now)
        labels = dedupe([*values["labels"], LATEST])
        self._take_labels(conn, versions, labels, now)
        row = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "name": name,
            "version": (versions[0]["version"] + 1) if versions else 1,
            "type": values["type"],
            "prompt": values["prompt"],
            "config": values["config"],
            "labels": labels,
            "tags": tags or [],
            "commit_message": values["commit_message"],
            "created_by": values.get("created_by") or "API",
            "created_at": now,
            "updated_at": now,
        }
        store.create_prompt(conn, row)
        deps = parse_dependency_tags(row["prompt"])
        store.create_dependencies(conn, project_id, row["id"], deps)
        if deps:
            Resolver(conn, project_id).resolve(row)
        self._check_dependents(conn, project_id, name)
        self._announce(conn, project_id, "created", row)
        return prompt_to_api(row)

    @staticmethod
    def _take_labels(
        conn: Connection, others: builtins.list[dict[str, Any]], labels: builtins.list[str], now: int
    ) -> None:
        """Remove ``labels`` from the given versions (they are about to move to another version)."""
        moving = set(labels)
        for other in others:
            if moving & set(other["labels"]):
                kept = [x for x in other["labels"] if x not in moving]
                store.update_prompt(conn, other["id"], {"labels": kept, "updated_at": now})
                other["labels"] = kept

    def update_labels(self, project_id: str, name: str, version: int, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "newLabels" not in body:
            raise PromptError("Request body must be an object with newLabels")
        new_labels = validate_labels(body["newLabels"], field="newLabels", allow_latest=False)
        return self._write(
            project_id, lambda conn: self._update_labels(conn, project_id, name, version, new_labels)
        )

    def _update_labels(
        self, conn: Connection, project_id: str, name: str, version: int, new_labels: builtins.list[str]
    ) -> dict[str, Any]:
        versions = store.list_versions(conn, project_id, name)
        target = next((v for v in versions if v["version"] == version), None)
        if target is None:
            raise PromptNotFound(not_found_message(name, version, None))
        now = now_ms()
        self._take_labels(conn, [v for v in versions if v is not target], new_labels, now)
        target["labels"] = dedupe([*target["labels"], *new_labels])
        target["updated_at"] = now
        store.update_prompt(conn, target["id"], {"labels": target["labels"], "updated_at": now})
        self._check_dependents(conn, project_id, name)
        self._announce(conn, project_id, "updated", target)
        return prompt_to_api(target)

    def delete(
        self, project_id: str, name: str, *, version: int | None = None, label: str | None = None
    ) -> None:
        if version is not None and label is not None:
            raise PromptError("Cannot specify both version and label")
        self._write(project_id, lambda conn: self._delete(conn, project_id, name, version, label))

    def _delete(
        self, conn: Connection, project_id: str, name: str, version: int | None, label: str | None
    ) -> None:
        versions = store.list_versions(conn, project_id, name)
        if version is not None:
            doomed = [v for v in versions if v["version"] == version]
        elif label is not None:
            doomed = [v for v in versions if label in v["labels"]]
        else:
            doomed = versions
        if not doomed:
            raise PromptNotFound("Prompt not found")
        doomed_ids = {v["id"] for v in doomed}
        remaining = [v for v in versions if v["id"] not in doomed_ids]
        store.delete_prompts(conn, project_id, list(doomed_ids))
        # `latest` names the newest version; when that one goes, the newest survivor takes the label over
        if remaining and not any(LATEST in v["labels"] for v in remaining):
            newest = remaining[0]
            store.update_prompt(
                conn, newest["id"], {"labels": [*newest["labels"], LATEST], "updated_at": now_ms()}
            )
        self._check_dependents(conn, project_id, name)
        for gone in doomed:
            self._announce(conn, project_id, "deleted", gone)

    def _check_dependents(self, conn: Connection, project_id: str, name: str) -> None:
        """Refuse the pending change when a prompt depending on ``name`` (transitively) no longer resolves."""
        resolver = Resolver(conn, project_id)
        seen, frontier = {name}, {name}
        parents: dict[str, dict[str, Any]] = {}
        # a dependent more than MAX_DEPTH levels up cannot resolve anyway, so the walk stops there
        for _ in range(MAX_DEPTH + 1):
            rows = store.list_dependents(conn, project_id, frontier)
            for row in rows:
                parents.setdefault(row["id"], row)
            frontier = {r["name"] for r in rows} - seen
            seen |= frontier
            if not frontier:
                break
        for row in parents.values():
            try:
                resolver.resolve(row)
            except PromptError as exc:
                raise PromptError(
                    f"Refused: prompt '{row['name']}' version {row['version']} depends on '{name}' and would no "
                    f"longer resolve ({exc.message}). Update or delete the dependent prompt first."
                ) from None
