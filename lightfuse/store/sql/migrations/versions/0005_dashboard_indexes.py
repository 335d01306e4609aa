"""covering indexes for the project home dashboard: usage per day and model, model and trace latencies

Revision ID: 0005_dashboard_indexes
Revises: 0004_web_indexes

Measured with bench/web_bench.py (1,000,000 observations; the 7-day window holds ~230k). The dashboard's queries
read only these indexes, never the wide observation rows (see store/sql/tracing/dashboard.py):
- (project, model, start_time, end_time, usage...) is new: distinct model names by a loose index scan, then per
  day one range read per model, in model order so the GROUP BY needs no sort, and one range for the rows
  without a model (NULL sorts first); durations for the percentiles from start/end_time.
- (project, trace, start_time, end_time) replaces (project, trace, start_time) from 0004 (same leading columns,
  so the trace detail keeps its plan): trace latency, min/max over start and end, without table reads.
Written by hand; works on SQLite and Postgres.
"""

from alembic import op

revision = "0005_dashboard_indexes"
down_revision = "0004_web_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_observations_project_model_time",
        "observations",
        [
            "project_id",
            "provided_model_name",
            "start_time",
            "end_time",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "total_cost",
        ],
        unique=False,
    )
    op.create_index(
        op.f("ix_observations_project_id_trace_id_start_time_end_time"),
        "observations",
        ["project_id", "trace_id", "start_time", "end_time"],
        unique=False,
    )
    op.drop_index(op.f("ix_observations_project_id_trace_id_start_time"), table_name="observations")


def downgrade() -> None:
    op.create_index(
        op.f("ix_observations_project_id_trace_id_start_time"),
        "observations",
        ["project_id", "trace_id", "start_time"],
        unique=False,
    )
    op.drop_index(op.f("ix_observations_project_id_trace_id_start_time_end_time"), table_name="observations")
    op.drop_index("ix_observations_project_model_time", table_name="observations")
