"""What the prompt pages need beyond the API: the folder list, one prompt with its versions, authors, resolved
references and per-version metrics, a line diff between two versions, and the protected labels.

Role checks stay in the web layer (``ProjectAccess.require``), which passes ``may_move_protected`` down; this
module trusts the project id it is given. Blocking: call from a worker thread.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from typing import Any

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.rows import iso_ms
from lightfuse.services.prompts.content import (
    PromptError,
    PromptNotFound,
    not_found_message,
    parse_dependency_tags,
    validate_labels,
)
from lightfuse.services.prompts.prompts import PromptService, prompt_to_api
from lightfuse.store.sql import prompt_pages as page_store
from lightfuse.store.sql import prompts as store


def _folder_rows(names: list[str], folder: str) -> list[dict[str, Any]]:
    """The entries directly inside ``folder`` ('' = top): sub-folders first (with their prompt count), then
    prompts. A name ``a/b/c`` lives in folder ``a/b``."""
    prefix = f"{folder}/" if folder else ""
    folders: dict[str, int] = {}
    prompts: list[dict[str, Any]] = []
    for name in names:
        if not name.startswith(prefix):
            continue
        head, sep, _ = name[len(prefix) :].partition("/")
        if sep:
            folders[prefix + head] = folders.get(prefix + head, 0) + 1
        else:
            prompts.append({"kind": "prompt", "name": name})
    rows: list[dict[str, Any]] = [
        {"kind": "folder", "name": f, "label": f[len(prefix) :], "count": n}
        for f, n in sorted(folders.items())
    ]
    return rows + prompts


def content_lines(prompt_type: str, content: Any) -> list[str]:
    """A version's content as lines for the diff: chat messages become a ``[role]`` line and their text."""
    if prompt_type != "chat" or not isinstance(content, list):
        return str(content).splitlines() if isinstance(content, str) else [json.dumps(content)]
    lines: list[str] = []
    for message in content:
        if message.get("type") == "placeholder":
            lines.append(f"[placeholder: {message.get('name')}]")
        else:
            lines.append(f"[{message.get('role')}]")
            lines.extend(str(message.get("content", "")).splitlines() or [""])
    return lines


def side_by_side(old: list[str], new: list[str]) -> dict[str, Any]:
    """Rows ``{op, left, right, leftNo, rightNo}`` (op: equal/change/delete/insert) and the counts."""
    rows: list[dict[str, Any]] = []
    added = removed = 0
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                rows.append({"op": "equal", "left": old[i1 + k], "right": new[j1 + k]} | _nos(i1 + k, j1 + k))
            continue
        removed += i2 - i1
        added += j2 - j1
        pairs = itertools.zip_longest(range(i1, i2), range(j1, j2))
        for i, j in pairs:
            kind = "change" if i is not None and j is not None else ("delete" if j is None else "insert")
            rows.append(
                {
                    "op": kind,
                    "left": old[i] if i is not None else None,
                    "right": new[j] if j is not None else None,
                    "leftNo": None if i is None else i + 1,
                    "rightNo": None if j is None else j + 1,
                }
            )
    return {"rows": rows, "added": added, "removed": removed}


def _nos(i: int, j: int) -> dict[str, int]:
    return {"leftNo": i + 1, "rightNo": j + 1}


class WebPrompts:
    def __init__(self, engine: Engine, prompts: PromptService) -> None:
        self._engine = engine
        self.prompts = prompts

    # --- the list -------------------------------------------------------------------------------------------

    def list_page(
        self, project_id: str, *, search: str, tag: str, folder: str, page: int, limit: int
    ) -> dict[str, Any]:
        with self._engine.connect() as conn:
            names = page_store.list_names(conn, project_id, search or None, tag or None)
            tags = page_store.list_tags(conn, project_id)
            # a search or a tag shows every match by its full name; otherwise one folder level
            rows: list[dict[str, Any]] = (
                [{"kind": "prompt", "name": n} for n in names]
                if search or tag
                else _folder_rows(names, folder)
            )
            total = len(rows)
            rows = rows[(page - 1) * limit : page * limit]
            wanted = [r["name"] for r in rows if r["kind"] == "prompt"]
            versions = page_store.version_summaries(conn, project_id, wanted)
        by_name: dict[str, list[dict[str, Any]]] = {}
        for v in versions:
            by_name.setdefault(v["name"], []).append(v)
        for row in rows:
            if row["kind"] == "prompt" and row["name"] in by_name:
                vs = by_name[row["name"]]
                row.update(
                    type=vs[-1]["type"],
                    versions=len(vs),
                    latestVersion=vs[-1]["version"],
                    labels=sorted({label for v in vs for label in v["labels"]}),
                    tags=vs[-1]["tags"],
                    lastUpdatedAt=iso_ms(max(v["updated_at"] for v in vs)),
                )
        meta = {
            "page": page,
            "limit": limit,
            "totalItems": total,
            "totalPages": max(1, math.ceil(total / limit)),
        }
        return {"folder": folder, "data": rows, "meta": meta, "tags": tags}

    # --- one prompt -----------------------------------------------------------------------------------------

    def detail(self, project_id: str, name: str, version: int | None) -> dict[str, Any]:
        """Every version (newest first, without content), the selected one (default: the newest) raw and
        resolved, its references, and the project's protected labels. (Per-version metrics are trace data:
        the web layer adds them from ``services.tracing.prompt_metrics``.)"""
        with self._engine.connect() as conn:
            rows = store.list_versions(conn, project_id, name)
            if not rows:
                raise PromptNotFound(f"Prompt not found: '{name}'")
            selected = (
                rows[0] if version is None else next((r for r in rows if r["version"] == version), None)
            )
            if selected is None:
                raise PromptNotFound(not_found_message(name, version, None))
            authors = page_store.user_labels(conn, [r["created_by"] for r in rows])
            protected = page_store.list_protected_labels(conn, project_id)
        versions = []
        for r in rows:
            item = prompt_to_api(r)
            item.pop("prompt")
            item["createdByName"] = authors.get(r["created_by"], r["created_by"])
            versions.append(item)
        current = prompt_to_api(selected)
        current["createdByName"] = authors.get(selected["created_by"], selected["created_by"])
        references = []
        for dep in parse_dependency_tags(selected["prompt"]):
            ref = {k: dep.get(k) for k in ("raw", "name", "version", "label")}
            try:
                target = self.prompts.get(
                    project_id, dep["name"], version=dep.get("version"), label=dep.get("label"), resolve=False
                )
                ref["resolvedVersion"] = target["version"]
            except PromptError as exc:
                ref["error"] = exc.message
            references.append(ref)
        resolved: Any = None
        resolve_error = None
        if references:
            try:
                resolved = self.prompts.get(project_id, name, version=selected["version"])["prompt"]
            except PromptError as exc:
                resolve_error = exc.message
        return {
            "name": name,
            "type": selected["type"],
            "tags": selected["tags"],
            "prompt": current,
            "resolvedPrompt": resolved,
            "resolveError": resolve_error,
            "references": references,
            "versions": versions,
            "protectedLabels": protected,
        }

    def raw_version(self, project_id: str, name: str, version: int | None) -> dict[str, Any]:
        """One version unresolved (the editor starts from it); the newest when ``version`` is None."""
        with self._engine.connect() as conn:
            rows = store.list_versions(conn, project_id, name)
        row = (
            rows[0] if rows and version is None else next((r for r in rows if r["version"] == version), None)
        )
        if row is None:
            raise PromptNotFound(not_found_message(name, version, None) if version else "Prompt not found")
        return prompt_to_api(row)

    def diff(self, project_id: str, name: str, old: int, new: int) -> dict[str, Any]:
        """Line diffs of the content and of the config between two versions of ``name``."""
        a = self.raw_version(project_id, name, old)
        b = self.raw_version(project_id, name, new)

        def config_lines(v: dict[str, Any]) -> list[str]:
            return json.dumps(v["config"], indent=2, sort_keys=True, ensure_ascii=False).splitlines()

        return {
            "name": name,
            "old": {k: a[k] for k in ("version", "labels", "commitMessage", "createdAt")},
            "new": {k: b[k] for k in ("version", "labels", "commitMessage", "createdAt")},
            "prompt": side_by_side(
                content_lines(a["type"], a["prompt"]), content_lines(b["type"], b["prompt"])
            ),
            "config": side_by_side(config_lines(a), config_lines(b)),
        }

    # --- protected labels -----------------------------------------------------------------------------------

    def protected_labels(self, project_id: str) -> list[str]:
        with self._engine.connect() as conn:
            return page_store.list_protected_labels(conn, project_id)

    def protect_label(self, project_id: str, label: str) -> None:
        clean = validate_labels([label.strip()], allow_latest=False)[0]
        with self._engine.begin() as conn:
            page_store.add_protected_label(conn, project_id, clean, now_ms())

    def unprotect_label(self, project_id: str, label: str) -> None:
        with self._engine.begin() as conn:
            page_store.remove_protected_label(conn, project_id, label)
