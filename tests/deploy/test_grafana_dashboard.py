"""deploy/grafana/lightfuse-dashboard.json: valid JSON, and every metric it queries is one Lightfuse serves (read
from a real app's /metrics registry with prometheus_client's parser), so a renamed metric fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lightfuse.app import build_services
from lightfuse.config import load_settings

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "lightfuse-dashboard.json"
SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def _served_names(tmp_path) -> set[str]:
    services = build_services(load_settings(data_dir=tmp_path / "data"))
    try:
        names = set()
        for family in text_string_to_metric_families(services.metrics.render().decode()):
            names.add(family.name)
            names.update(family.name + s for s in SUFFIXES)
        return names
    finally:
        services.engine.dispose()


def test_every_queried_metric_is_served(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [
        v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)
    ]
    assert len(exprs) > 20
    queried = {m for e in exprs for m in re.findall(r"\blightfuse_[a-z_]+", e)}
    served = _served_names(tmp_path)
    assert "lightfuse_llm_cost_usd_total" in served
    assert queried - served == set()
    # the business panels are there
    assert any("lightfuse_llm_cost_usd_total" in e and "model" in e for e in exprs)


def test_panels_have_unique_ids_and_fit_the_grid():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, p["title"]
