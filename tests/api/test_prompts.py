"""Prompt management (api-semantics 6) in-process on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from lightfuse.services.prompts.prompts import PromptService

V2 = "/api/public/v2/prompts"


def create(api, auth=None, expect: int = 201, **body):
    r = api.client.post(V2, json=body, auth=auth or api.auth)
    assert r.status_code == expect, r.text
    return r.json()


def get(api, name: str, expect: int = 200, auth=None, **params):
    r = api.client.get(f"{V2}/{name.replace('/', '%2F')}", params=params, auth=auth or api.auth)
    assert r.status_code == expect, r.text
    return r.json()


def patch(api, name: str, version, labels, expect: int = 200):
    r = api.client.patch(
        f"{V2}/{name.replace('/', '%2F')}/versions/{version}", json={"newLabels": labels}, auth=api.auth
    )
    assert r.status_code == expect, r.text
    return r.json()


def delete(api, name: str, expect: int = 204, **params):
    r = api.client.delete(f"{V2}/{name.replace('/', '%2F')}", params=params, auth=api.auth)
    assert r.status_code == expect, r.text
    return r


def labels_by_version(api, name: str) -> dict[int, list[str]]:
    versions = api.client.get(V2, params={"name": name}, auth=api.auth).json()["data"][0]["versions"]
    return {v: get(api, name, version=v)["labels"] for v in versions}


def ref(name: str, version: int | None = None, label: str | None = None) -> str:
    tail = f"version={version}" if version is not None else f"label={label}"
    return f"@@@langfusePrompt:name={name}|{tail}@@@"


# --- versions and labels ------------------------------------------------------------------------------------


def test_versions_labels_and_latest(api):
    v1 = create(
        api,
        name="greet",
        prompt="Hi {{name}}",
        labels=["production"],
        config={"temperature": 0.2},
        commitMessage="first",
    )
    assert v1["version"] == 1 and v1["type"] == "text" and v1["createdBy"] == "API"
    assert v1["labels"] == ["production", "latest"] and v1["isActive"] is True
    assert v1["config"] == {"temperature": 0.2} and v1["commitMessage"] == "first" and v1["tags"] == []
    assert v1["projectId"] == api.project_id and v1["createdAt"].endswith("Z")
    v2 = create(api, name="greet", prompt="Hello {{name}}")
    assert v2["version"] == 2 and v2["labels"] == ["latest"] and v2["isActive"] is False
    assert v2["config"] == {}

    default = get(api, "greet")
    assert (
        default["version"] == 1 and default["prompt"] == "Hi {{name}}" and default["labels"] == ["production"]
    )
    assert default["resolutionGraph"] is None
    assert get(api, "greet", label="latest")["version"] == 2
    assert get(api, "greet", version=2)["prompt"] == "Hello {{name}}"
    assert get(api, "greet", version=3, expect=404) == {
        "message": "Prompt not found: 'greet' with version 3",
        "error": "LangfuseNotFoundError",
    }
    assert (
        get(api, "greet", label="staging", expect=404)["message"]
        == "Prompt not found: 'greet' with label 'staging'"
    )
    assert get(api, "missing", expect=404)["message"] == "Prompt not found: 'missing' with label 'production'"

    # a new version with a label takes it from the version that had it
    create(api, name="greet", prompt="Hey", labels=["production", "staging"])
    assert labels_by_version(api, "greet") == {1: [], 2: [], 3: ["production", "staging", "latest"]}
    assert get(api, "greet")["version"] == 3


def test_get_parameter_validation(api):
    create(api, name="p", prompt="x", labels=["production"])
    assert (
        get(api, "p", version=1, label="production", expect=400)["message"]
        == "Cannot specify both version and label"
    )
    assert get(api, "p", version="abc", expect=400)["error"] == "InvalidRequestError"
    assert get(api, "p", resolve="maybe", expect=400)["error"] == "InvalidRequestError"


def test_patch_adds_labels_moves_them_and_refuses_latest(api):
    create(api, name="folder/sub/p", prompt="one", labels=["production"])
    create(api, name="folder/sub/p", prompt="two")
    updated = patch(api, "folder/sub/p", 1, ["staging", "qa"])
    assert updated["version"] == 1 and updated["labels"] == ["production", "staging", "qa"]
    assert updated["prompt"] == "one" and updated["name"] == "folder/sub/p"
    assert updated["updatedAt"] >= updated["createdAt"]
    patch(api, "folder/sub/p", 2, ["production"])
    assert labels_by_version(api, "folder/sub/p") == {1: ["staging", "qa"], 2: ["latest", "production"]}
    assert get(api, "folder/sub/p")["prompt"] == "two"

    assert "latest" in patch(api, "folder/sub/p", 1, ["latest"], expect=400)["message"]
    assert patch(api, "folder/sub/p", 9, ["x"], expect=404)["error"] == "LangfuseNotFoundError"
    patch(api, "folder/sub/p", 1, ["Bad Label"], expect=400)
    patch(api, "folder/sub/p", "one", ["x"], expect=400)
    r = api.client.patch(f"{V2}/folder%2Fsub%2Fp/versions/1", json={}, auth=api.auth)
    assert r.status_code == 400


def test_tags_are_shared_and_inherited(api):
    create(api, name="t", prompt="1", tags=["a", "b"])
    assert create(api, name="t", prompt="2")["tags"] == ["a", "b"]
    assert create(api, name="t", prompt="3", tags=["c"])["tags"] == ["c"]
    assert [get(api, "t", version=v)["tags"] for v in (1, 2, 3)] == [["c"], ["c"], ["c"]]
    create(api, name="u", prompt="1", tags=["a"])
    listed = api.client.get(V2, params={"tag": "c"}, auth=api.auth).json()
    assert [p["name"] for p in listed["data"]] == ["t"]
    assert create(api, name="t", prompt="4", tags=[])["tags"] == []
    assert get(api, "t", version=1)["tags"] == []


def test_chat_prompts_with_placeholders(api):
    messages = [
        {"role": "system", "content": "You are {{persona}}.", "type": "chatmessage"},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{ question }}", "type": "message", "extra": 1},
    ]
    created = create(api, name="chat", type="chat", prompt=messages, labels=["production"])
    stored = [
        {"role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{ question }}"},
    ]
    assert created["type"] == "chat" and created["prompt"] == stored
    assert get(api, "chat")["prompt"] == stored

    # the type of a name is fixed
    create(api, name="chat", prompt="now text", expect=400)
    # a name used as variable and placeholder at once
    clash = [{"role": "user", "content": "{{history}}"}, {"type": "placeholder", "name": "history"}]
    assert "history" in create(api, name="c2", type="chat", prompt=clash, expect=400)["message"]
    create(api, name="c2", type="chat", prompt=[{"type": "placeholder", "name": "1bad"}], expect=400)
    create(api, name="c2", type="chat", prompt=[{"role": "user"}], expect=400)
    create(api, name="c2", type="chat", prompt="not a list", expect=400)
    create(api, name="c2", prompt=[{"role": "user", "content": "x"}], expect=400)  # text type needs a string
    create(api, name="c2", type="image", prompt="x", expect=400)


@pytest.mark.parametrize(
    "name", ["", "a|b", "/a", "a/", "a//b", "<b>x</b>", "new", "metrics", "prompt-detail", 7]
)
def test_invalid_names(api, name):
    assert create(api, name=name, prompt="x", expect=400)["error"] == "InvalidRequestError"


def test_invalid_labels_and_bodies(api):
    for label in ["Production", "", "x" * 37, "a b", "é"]:
        create(api, name="n", prompt="x", labels=[label], expect=400)
    create(api, name="n", prompt="x", labels="production", expect=400)
    create(api, name="n", prompt="x", tags=[1], expect=400)
    create(api, name="n", prompt="x", commitMessage="m" * 501, expect=400)
    r = api.client.post(V2, content=b"[1]", headers={"content-type": "application/json"}, auth=api.auth)
    assert r.status_code == 400
    assert create(api, name="n", prompt="x", labels=["a-b_c.1", "a-b_c.1"])["labels"] == ["a-b_c.1", "latest"]


# --- composability ------------------------------------------------------------------------------------------


def test_dependencies_resolve_on_read(api):
    create(api, name="base", prompt="BASE-1", labels=["production"])
    create(api, name="base", prompt='BASE-2 "quoted"\nline')
    parent = create(
        api,
        name="parent",
        labels=["production"],
        prompt=f"[{ref('base', version=2)}] [{ref('base', label='production')}] {ref('bad|x=1')}",
    )
    # create answers with the stored, unresolved content
    assert ref("base", version=2) in parent["prompt"]
    got = get(api, "parent")
    assert got["prompt"] == f'[BASE-2 "quoted"\nline] [BASE-1] {ref("bad|x=1")}'
    graph = got["resolutionGraph"]
    assert graph["root"] == {"name": "parent", "version": 1, "id": parent["id"]}
    assert sorted(n["version"] for n in graph["dependencies"][parent["id"]]) == [1, 2]

    raw = get(api, "parent", resolve="false")
    assert raw["prompt"] == parent["prompt"] and raw["resolutionGraph"] is None

    # a label reference follows the label
    patch(api, "base", 2, ["production"])
    assert get(api, "parent")["prompt"].endswith(f'[BASE-2 "quoted"\nline] {ref("bad|x=1")}')

    # chat prompts embed text prompts inside message contents; nested dependencies are resolved too
    create(api, name="middle", prompt=f"M({ref('base', version=1)})")
    chat = create(
        api,
        name="chat",
        type="chat",
        prompt=[{"role": "system", "content": f"S {ref('middle', label='latest')}"}],
    )
    resolved = get(api, "chat", label="latest")
    assert resolved["prompt"] == [{"role": "system", "content": "S M(BASE-1)"}]
    middle_id = get(api, "middle", label="latest")["id"]
    deps = resolved["resolutionGraph"]["dependencies"]
    assert deps[chat["id"]][0]["name"] == "middle" and deps[middle_id][0] == {
        "id": get(api, "base", version=1)["id"],
        "name": "base",
        "version": 1,
    }


def test_dependency_errors_on_create(api):
    create(api, name="chatty", type="chat", prompt=[{"role": "user", "content": "x"}])
    create(api, name="a", prompt="plain")
    assert "not found" in create(api, name="p", prompt=ref("nope", version=1), expect=400)["message"]
    assert "chat prompt" in create(api, name="p", prompt=ref("chatty", label="latest"), expect=400)["message"]
    # referencing any version of its own name is a cycle
    assert "Circular" in create(api, name="a", prompt=ref("a", version=1), expect=400)["message"]
    create(api, name="b", prompt=ref("a", label="latest"))
    assert "Circular" in create(api, name="a", prompt=ref("b", label="latest"), expect=400)["message"]
    # nothing of the refused versions was kept
    assert get(api, "a", label="latest")["version"] == 1


def test_depth_limit(api):
    create(api, name="p0", prompt="leaf")
    for i in range(1, 6):
        create(api, name=f"p{i}", prompt=f"{i}<{ref(f'p{i - 1}', label='latest')}>")
    assert get(api, "p5", label="latest")["prompt"] == "5<4<3<2<1<leaf>>>>>"
    assert "depth" in create(api, name="p6", prompt=ref("p5", label="latest"), expect=400)["message"]
    # deepening the bottom of the chain would push p5 past the limit: refused, p0 unchanged
    create(api, name="q", prompt="deeper")
    assert "p5" in create(api, name="p0", prompt=ref("q", version=1), expect=400)["message"]
    assert get(api, "p0", label="latest")["version"] == 1


def test_relabel_refused_when_it_breaks_a_dependent(api):
    create(api, name="q0", prompt="leaf")
    for i in range(1, 5):
        create(api, name=f"q{i}", prompt=ref(f"q{i - 1}", version=1))
    create(api, name="b", prompt="flat", labels=["production"])
    create(api, name="b", prompt=ref("q4", version=1))  # b v2 is 5 levels deep
    create(api, name="a", prompt=ref("b", label="production"))
    message = patch(api, "b", 2, ["production"], expect=400)["message"]
    assert "'a' version 1" in message
    assert get(api, "b")["version"] == 1


# --- deletes ------------------------------------------------------------------------------------------------


def test_deletes_by_version_label_and_all(api):
    for i in range(1, 4):
        create(
            api, name="d", prompt=f"v{i}", labels=["production"] if i == 1 else ["staging"] if i == 2 else []
        )
    delete(api, "d", expect=404, version=9)
    delete(api, "d", expect=400, version=1, label="production")
    r = delete(api, "d", version=3)
    assert r.content == b""
    # latest passes to the newest remaining version
    assert labels_by_version(api, "d") == {1: ["production"], 2: ["staging", "latest"]}
    delete(api, "d", label="staging")
    assert labels_by_version(api, "d") == {1: ["production", "latest"]}
    delete(api, "d", label="nope", expect=404)
    create(api, name="d", prompt="v2 again")
    delete(api, "d")
    get(api, "d", expect=404)
    assert api.client.get(V2, params={"name": "d"}, auth=api.auth).json()["data"] == []
    delete(api, "d", expect=404)


def test_deletes_refused_while_depended_on(api):
    create(api, name="child", prompt="c1", labels=["production"])
    create(api, name="child", prompt="c2")
    create(api, name="by-version", prompt=ref("child", version=2))
    create(api, name="by-label", prompt=ref("child", label="production"))
    assert "by-version" in delete(api, "child", version=2, expect=400).json()["message"]
    delete(api, "child", version=1, expect=400)
    delete(api, "child", label="production", expect=400)
    delete(api, "child", expect=400)
    assert get(api, "child", version=2)["prompt"] == "c2"
    # once the dependents are gone the deletes go through
    delete(api, "by-version")
    delete(api, "child", version=2)
    delete(api, "by-label")
    delete(api, "child")


# --- listing ------------------------------------------------------------------------------------------------


def test_list_groups_by_name_with_pagination_and_filters(api):
    for i in range(12):
        create(
            api, name=f"n{i:02d}", prompt="x", labels=["production"] if i % 2 == 0 else [], tags=[f"t{i % 3}"]
        )
    create(api, name="n00", prompt="y", config={"model": "m2"})
    page1 = api.client.get(V2, auth=api.auth).json()
    assert page1["meta"] == {"page": 1, "limit": 10, "totalItems": 12, "totalPages": 2}
    assert page1["pagination"] == page1["meta"]
    assert [p["name"] for p in page1["data"]] == [f"n{i:02d}" for i in range(10)]
    first = page1["data"][0]
    assert first["versions"] == [1, 2] and first["labels"] == ["latest", "production"]
    assert first["lastConfig"] == {"model": "m2"} and first["type"] == "text" and first["tags"] == ["t0"]
    assert first["lastUpdatedAt"].endswith("Z")
    page2 = api.client.get(V2, params={"page": 2}, auth=api.auth).json()
    assert [p["name"] for p in page2["data"]] == ["n10", "n11"]

    def names(**params):
        return [p["name"] for p in api.client.get(V2, params=params, auth=api.auth).json()["data"]]

    assert names(label="production", limit=100) == [f"n{i:02d}" for i in range(0, 12, 2)]
    assert names(tag="t1", limit=100) == ["n01", "n04", "n07", "n10"]
    assert names(version=2) == ["n00"]
    by_version = api.client.get(V2, params={"name": "n00", "version": 1}, auth=api.auth).json()["data"][0]
    assert by_version["versions"] == [1] and by_version["lastConfig"] == {}
    assert by_version["labels"] == ["production"]  # labels of the matching versions only
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert names(fromUpdatedAt=future) == []
    assert len(names(toUpdatedAt=future, limit=100)) == 12
    flt = [{"type": "string", "column": "name", "operator": "starts with", "value": "n1"}]
    assert names(filter=json.dumps(flt)) == ["n10", "n11"]
    for bad in (
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"fromUpdatedAt": "2024-01-01T00:00:00"},
        {"filter": "not json"},
        {"filter": json.dumps([{**flt[0], "column": "nope"}])},
    ):
        assert api.client.get(V2, params=bad, auth=api.auth).status_code == 400, bad


# --- legacy v1, isolation, auth, cache ------------------------------------------------------------------------


def test_legacy_v1_endpoints(api):
    r = api.client.post(
        "/api/public/prompts", json={"name": "old", "prompt": "v1", "isActive": True}, auth=api.auth
    )
    assert r.status_code == 201 and r.json()["isActive"] is True
    assert r.json()["labels"] == ["production", "latest"]
    r = api.client.post(
        "/api/public/prompts", json={"name": "old", "prompt": "v2", "isActive": False}, auth=api.auth
    )
    assert r.status_code == 201 and r.json()["labels"] == ["latest"]
    got = api.client.get("/api/public/prompts", params={"name": "old"}, auth=api.auth)
    assert got.status_code == 200 and got.json()["prompt"] == "v1" and got.json()["isActive"] is True
    got = api.client.get("/api/public/prompts", params={"name": "old", "version": 2}, auth=api.auth)
    assert got.json()["prompt"] == "v2" and got.json()["isActive"] is False
    missing = api.client.get("/api/public/prompts", params={"name": "nope"}, auth=api.auth)
    assert missing.status_code == 404 and missing.json()["error"] == "LangfuseNotFoundError"
    assert api.client.get("/api/public/prompts", auth=api.auth).status_code == 400


def test_projects_are_isolated(api):
    create(api, name="shared-name", prompt="mine", labels=["production"])
    _, other = api.new_project_key()
    get(api, "shared-name", expect=404, auth=other)
    assert create(api, name="shared-name", prompt="theirs", auth=other)["version"] == 1
    assert api.client.get(V2, auth=other).json()["meta"]["totalItems"] == 1
    r = api.client.delete(f"{V2}/shared-name", auth=other)
    assert r.status_code == 204
    assert get(api, "shared-name")["prompt"] == "mine"


def test_bearer_and_missing_auth_are_refused(api):
    bearer = {"Authorization": f"Bearer {api.public_key}"}
    for method, url in (
        ("GET", f"{V2}/x"),
        ("POST", V2),
        ("GET", V2),
        ("PATCH", f"{V2}/x/versions/1"),
        ("DELETE", f"{V2}/x"),
        ("GET", "/api/public/prompts?name=x"),
    ):
        r = api.client.request(method, url, headers=bearer, json={"name": "x", "prompt": "y"})
        assert r.status_code == 403, (method, url, r.text)
        assert r.json() == {
            "message": f"Access denied - need to use basic auth with secret key to {method} prompts"
        }
    assert api.client.get(f"{V2}/x").status_code == 401
    assert api.client.get(f"{V2}/x", auth=(api.public_key, "sk-lf-wrong")).status_code == 401
    assert api.client.put(V2, auth=api.auth).status_code == 405


def test_cached_reads_follow_writes_of_any_process(api):
    create(api, name="hot", prompt="one", labels=["production"])
    assert get(api, "hot")["prompt"] == "one"
    assert get(api, "hot")["prompt"] == "one"  # served from the cache
    create(api, name="hot", prompt="two", labels=["production"])
    assert get(api, "hot")["prompt"] == "two"
    patch(api, "hot", 1, ["production"])
    assert get(api, "hot")["prompt"] == "one"
    get(api, "cold", expect=404)
    # Another process on the same database: a second service, whose writes this one's cache never saw. They
    # become visible once the revision is re-read, at most revalidate_seconds later (shortened here).
    api.services.prompts.revalidate_seconds = 0.05
    other_process = PromptService(api.services.engine)
    other_process.create(api.project_id, {"name": "cold", "prompt": "now here", "labels": ["production"]})
    other_process.update_labels(api.project_id, "hot", 2, {"newLabels": ["production"]})
    time.sleep(0.1)
    assert get(api, "cold")["prompt"] == "now here"
    assert get(api, "hot")["prompt"] == "two"
    other_process.delete(api.project_id, "hot")
    time.sleep(0.1)
    get(api, "hot", expect=404)
