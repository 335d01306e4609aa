"""Units of the observability work: the intake byte bound, the metrics' label cap and per-batch tally, the
CPU count a container may use."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lightfuse.config import usable_cpus
from lightfuse.services.ingestion.budget import IntakeBudget
from lightfuse.services.operations.metrics import OTHER, BatchTally, OpsMetrics


def test_budget_admits_one_body_alone_and_refuses_beyond_the_bound():
    budget = IntakeBudget(1000)
    assert budget.try_acquire(5000)  # larger than the bound, but nothing else is held
    assert not budget.try_acquire(1)
    budget.release(5000)
    assert budget.try_acquire(600) and not budget.try_acquire(600) and budget.try_acquire(400)
    assert budget.held_bytes == 1000 and budget.refusals == 2


def _samples(metrics: OpsMetrics) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
    }


def test_tally_counts_increases_only_and_models_past_the_cap_fold_into_other():
    metrics = OpsMetrics(max_label_values=2)
    tally = BatchTally()
    for model in ("a", "b", "c"):
        row = {
            "type": "GENERATION",
            "provided_model_name": model,
            "environment": "prod",
            "usage_details": {"input": 10, "output": 5, "total": 15},
            "total_cost": 0.5,
        }
        tally.add_observation("p1", row, None)
    # an update of a stored generation adds only what grew, and is not a new generation
    stored = {"usage_details": {"input": 10, "output": 5, "total": 15}, "total_cost": 0.5}
    grown = {
        "type": "GENERATION",
        "provided_model_name": "a",
        "environment": "prod",
        "usage_details": {"input": 10, "output": 9, "total": 19},
        "total_cost": 0.25,
    }
    tally.add_observation("p1", grown, stored)
    metrics.record_commit(0.01, 4, tally, [1.0])
    got = _samples(metrics)
    labels = (("environment", "prod"), ("model", "a"), ("project_id", "p1"))
    assert got[("lightfuse_llm_generations_total", labels)] == 1
    assert got[("lightfuse_llm_cost_usd_total", labels)] == 0.5  # the lower cost of the update adds nothing
    assert got[("lightfuse_llm_tokens_total", (labels[0], ("kind", "output"), *labels[1:]))] == 9
    other = (("environment", "prod"), ("model", OTHER), ("project_id", "p1"))
    assert got[("lightfuse_llm_generations_total", other)] == 1  # "c" came third


def test_usable_cpus_follows_a_cgroup_quota(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) >= 1
    assert usable_cpus(tmp_path / "absent") >= 1
