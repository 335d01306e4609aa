"""Rendering deploy/helm/lightfuse with Helm's own Go SDK (helm-python-sdk: offline, no helm binary).

Shared by the chart tests; kept apart so test_helm_chart.py holds only assertions.
"""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "lightfuse"
EXAMPLES_DIR = ROOT / "deploy" / "helm" / "examples"
EXAMPLES = {path.stem: path for path in sorted(EXAMPLES_DIR.glob("*.yaml"))}
RELEASE = "lf"
NAMESPACE = "lightfuse"

# Kinds whose CRDs kubernetes-validate cannot know (it ships only the built-in OpenAPI schemas).
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("gateway.networking.k8s.io/v1", "HTTPRoute")}


def example_values(name: str) -> dict:
    return yaml.safe_load(EXAMPLES[name].read_text()) or {}


def render(values: dict | None = None, *, validate: bool = True) -> list[dict]:
    """The manifests an install with ``values`` creates (schema-checked first, as `helm install` does)."""
    with helm.Chart.load(CHART) as chart:
        if validate:
            chart.validate_schema(values or {})
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict] = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def render_text(values: dict) -> str:
    """One multi-document YAML file of the rendered manifests (what checkov scans)."""
    return "\n---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in render(values))


def only(docs: list[dict], kind: str) -> dict:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[dict]) -> set[str]:
    return {doc["kind"] for doc in docs}


def container(docs: list[dict]) -> dict:
    (main,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return main


def env_list(docs: list[dict]) -> list[dict]:
    return container(docs)["env"]


def env(docs: list[dict]) -> dict[str, dict]:
    """Variable name -> its EnvVar entry; a name set twice would shadow, so that is an error here."""
    entries = env_list(docs)
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate variables: {names}"
    return {entry["name"]: entry for entry in entries}


def literal(docs: list[dict], name: str) -> str:
    entry = env(docs)[name]
    assert "value" in entry, f"{name} is not a literal: {entry}"
    return entry["value"]


def secret_ref(docs: list[dict], name: str) -> dict:
    entry = env(docs)[name]
    assert "valueFrom" in entry, f"{name} is not from a Secret: {entry}"
    return entry["valueFrom"]["secretKeyRef"]
