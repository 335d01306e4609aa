"""Prompt content rules (api-semantics 6): request validation, dependency tags and their resolution.

Pure functions over request bodies and stored rows, except :class:`Resolver`, which fetches the referenced
versions through one open connection. ``services/prompts/prompts.py`` owns transactions, caching and API objects.

* Only text prompts can be referenced, at most ``MAX_DEPTH`` levels below the prompt being read, and a name
  may appear only once on a resolution path (that also forbids a prompt referencing its own name).
* Malformed tags (not exactly ``name=...|version=N`` or ``name=...|label=L``) are not references and stay
  literal text, as in Langfuse.
* Substitution happens inside every string of the content, so a tag works in a chat message's content just
  as in a text prompt.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from lightfuse.store.sql import prompts as store

LATEST = "latest"
PRODUCTION = "production"
MAX_DEPTH = 5
MAX_NAME_LENGTH = 500
MAX_COMMIT_MESSAGE = 500
RESERVED_NAMES = frozenset({"new", "metrics", "prompt-detail"})
_LABEL_RE = re.compile(r"[a-z0-9_\-.]{1,36}")
_PLACEHOLDER_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_HTML_TAG_RE = re.compile(r"<[^<>]*>")
_TAG_RE = re.compile(r"@@@langfusePrompt:(.*?)@@@")
_VARIABLE_RE = re.compile(r"\{\{([^{}]*)\}\}")
# a letter, then letters, digits or underscores (Python's \w is Unicode-aware)
_VARIABLE_NAME_RE = re.compile(r"[^\W\d_]\w*")


class PromptError(ValueError):
    """A request the client got wrong; ``status`` is 400 unless a subclass says otherwise."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromptNotFound(PromptError):
    status = 404


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def not_found_message(name: str, version: int | None, label: str | None) -> str:
    if version is not None:
        return f"Prompt not found: '{name}' with version {version}"
    return f"Prompt not found: '{name}' with label '{label}'"


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PromptError("name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise PromptError(f"name must be at most {MAX_NAME_LENGTH} characters")
    if "|" in name:
        raise PromptError("name cannot contain '|'")
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise PromptError("name cannot start or end with '/' or contain '//' (slashes separate folders)")
    if _HTML_TAG_RE.search(name):
        raise PromptError("name cannot contain HTML tags")
    if name in RESERVED_NAMES:
        raise PromptError(f"'{name}' is a reserved name")
    return name


def validate_labels(labels: Any, *, field: str = "labels", allow_latest: bool = True) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise PromptError(f"{field} must be an array of strings")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise PromptError(
                f"Invalid label '{label}': labels are 1 to 36 characters of lowercase letters, digits, "
                "'_', '-' and '.'"
            )
        if label == LATEST and not allow_latest:
            raise PromptError("The 'latest' label is reserved and managed by Lightfuse")
    return dedupe(labels)


def _validate_tags(tags: Any) -> list[str] | None:
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(x, str) and x for x in tags):
        raise PromptError("tags must be an array of non-empty strings")
    return dedupe(tags)


def _variables(text: str) -> set[str]:
    names = (m.strip() for m in _VARIABLE_RE.findall(text))
    return {n for n in names if _VARIABLE_NAME_RE.fullmatch(n)}


def _validate_chat(messages: Any) -> list[dict[str, Any]]:
    """Chat messages keep only role/content; placeholders keep type/name (what clients tell them apart by)."""
    if not isinstance(messages, list):
        raise PromptError("A chat prompt must be an array of messages")
    out: list[dict[str, Any]] = []
    placeholders: set[str] = set()
    variables: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise PromptError(f"prompt[{i}] must be an object")
        if message.get("type") == "placeholder":
            name = message.get("name")
            if not isinstance(name, str) or not _PLACEHOLDER_RE.fullmatch(name):
                raise PromptError(
                    f"prompt[{i}]: a placeholder name must start with a letter and contain only letters, "
                    "digits and underscores"
                )
            placeholders.add(name)
            out.append({"type": "placeholder", "name": name})
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise PromptError(f"prompt[{i}] must have string 'role' and 'content' (or be a placeholder)")
        variables |= _variables(content)
        out.append({"role": role, "content": content})
    clash = sorted(placeholders & variables)
    if clash:
        raise PromptError(
            f"Names used both as a variable and as a placeholder: {', '.join(clash)}. Use distinct names."
        )
    return out


def validate_create(body: Any, *, legacy: bool = False) -> dict[str, Any]:
    """CreatePromptRequest (v1 adds ``isActive``) -> name, type, prompt, config, labels, tags (None = inherit),
    commit_message."""
    if not isinstance(body, dict):
        raise PromptError("Request body must be a JSON object")
    name = validate_name(body.get("name"))
    prompt_type = body.get("type") or "text"
    if prompt_type not in ("text", "chat"):
        raise PromptError("type must be 'text' or 'chat'")
    if prompt_type == "text":
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise PromptError("A text prompt must be a string (set type to 'chat' for a list of messages)")
    else:
        prompt = _validate_chat(body.get("prompt"))
    labels = validate_labels(body.get("labels"))
    if legacy and body.get("isActive") is not None:
        if not isinstance(body["isActive"], bool):
            raise PromptError("isActive must be a boolean")
        if body["isActive"]:
            labels = dedupe([*labels, PRODUCTION])
    commit = body.get("commitMessage")
    if commit is not None and (not isinstance(commit, str) or len(commit) > MAX_COMMIT_MESSAGE):
        raise PromptError(f"commitMessage must be a string of at most {MAX_COMMIT_MESSAGE} characters")
    config = body.get("config")
    return {
        "name": name,
        "type": prompt_type,
        "prompt": prompt,
        "config": {} if config is None else config,
        "labels": labels,
        "tags": _validate_tags(body.get("tags")),
        "commit_message": commit,
    }


# --------------------------------------------------------------------------------------------------------------
# Dependency tags and resolution
# --------------------------------------------------------------------------------------------------------------


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _parse_tag(inner: str) -> dict[str, Any] | None:
    parts = inner.split("|")
    if len(parts) != 2 or not parts[0].startswith("name="):
        return None
    name = parts[0][len("name=") :]
    key, sep, value = parts[1].partition("=")
    if not name or not sep or not value:
        return None
    if key == "version":
        if not value.isdigit() or int(value) < 1:
            return None
        return {"name": name, "version": int(value)}
    if key == "label":
        return {"name": name, "label": value}
    return None


def parse_dependency_tags(prompt: Any) -> list[dict[str, Any]]:
    """The well-formed dependency tags in a prompt's content, each once: {raw, name, version | label}."""
    found: dict[str, dict[str, Any]] = {}
    for text in _strings(prompt):
        for match in _TAG_RE.finditer(text):
            raw = match.group(0)
            if raw not in found and (dep := _parse_tag(match.group(1))) is not None:
                found[raw] = {"raw": raw, **dep}
    return list(found.values())


def _substitute(value: Any, texts: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _TAG_RE.sub(lambda m: texts.get(m.group(0), m.group(0)), value)
    if isinstance(value, list):
        return [_substitute(v, texts) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, texts) for k, v in value.items()}
    return value


class Resolver:
    """Resolves versions against one connection; remembers fetched versions for the length of one request."""

    def __init__(self, conn: Connection, project_id: str) -> None:
        self._conn = conn
        self._project_id = project_id
        self._rows: dict[tuple, dict[str, Any] | None] = {}

    def fetch(self, name: str, version: int | None = None, label: str | None = None) -> dict[str, Any] | None:
        key = (name, version, label)
        if key not in self._rows:
            self._rows[key] = store.get_prompt(
                self._conn, self._project_id, name, version=version, label=label
            )
        return self._rows[key]

    def resolve(self, row: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """-> (content with every tag substituted, resolutionGraph or None when there are no dependencies)."""
        edges: dict[str, list[dict[str, Any]]] = {}
        content = self._resolve(row, (row["name"],), 0, edges)
        if not edges:
            return content, None
        root = {"name": row["name"], "version": row["version"], "id": row["id"]}
        return content, {"root": root, "dependencies": edges}

    def _resolve(self, row: dict[str, Any], path: tuple[str, ...], level: int, edges: dict) -> Any:
        deps = parse_dependency_tags(row["prompt"])
        if not deps:
            return row["prompt"]
        if level + 1 > MAX_DEPTH:
            raise PromptError(
                f"Maximum nesting depth of {MAX_DEPTH} exceeded while resolving prompt dependencies"
            )
        texts: dict[str, str] = {}
        for dep in deps:
            what = f"version {dep['version']}" if "version" in dep else f"label '{dep['label']}'"
            if dep["name"] in path:
                chain = " -> ".join((*path, dep["name"]))
                raise PromptError(f"Circular prompt dependency: {chain}")
            child = self.fetch(dep["name"], dep.get("version"), dep.get("label"))
            if child is None:
                raise PromptError(f"Prompt dependency not found: '{dep['name']}' with {what}")
            if child["type"] != "text":
                raise PromptError(
                    f"Prompt dependency '{dep['name']}' ({what}) is a chat prompt; only text prompts can be "
                    "referenced"
                )
            texts[dep["raw"]] = self._resolve(child, (*path, child["name"]), level + 1, edges)
            children = edges.setdefault(row["id"], [])
            node = {"id": child["id"], "name": child["name"], "version": child["version"]}
            if node not in children:
                children.append(node)
        return _substitute(row["prompt"], texts)
