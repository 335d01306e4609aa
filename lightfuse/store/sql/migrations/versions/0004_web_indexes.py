"""indexes for the web UI on large stores: a trace's observations and scores in time order, trace names

Revision ID: 0004_web_indexes
Revises: 0001

Measured with bench/web_bench.py (1,000,000 observations). Without the time column in the per-trace indexes,
SQLite chose the project's time index to avoid sorting (ORDER BY start_time / timestamp) and walked the whole
project to render one trace; the name index makes the trace table's name suggestions an index-only read.
The per-trace indexes replace the two-column ones (same leading columns). Written by hand; works on SQLite
and Postgres.
"""

from alembic import op

revision = "0004_web_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_observations_project_id_trace_id_start_time"),
        "observations",
        ["project_id", "trace_id", "start_time"],
        unique=False,
    )
    op.drop_index(op.f("ix_observations_project_id_trace_id"), table_name="observations")
    op.create_index(
        op.f("ix_scores_project_id_trace_id_timestamp"),
        "scores",
        ["project_id", "trace_id", "timestamp"],
        unique=False,
    )
    op.drop_index(op.f("ix_scores_project_id_trace_id"), table_name="scores")
    op.create_index(op.f("ix_traces_project_id_name"), "traces", ["project_id", "name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_traces_project_id_name"), table_name="traces")
    op.create_index(op.f("ix_scores_project_id_trace_id"), "scores", ["project_id", "trace_id"], unique=False)
    op.drop_index(op.f("ix_scores_project_id_trace_id_timestamp"), table_name="scores")
    op.create_index(
        op.f("ix_observations_project_id_trace_id"), "observations", ["project_id", "trace_id"], unique=False
    )
    op.drop_index(op.f("ix_observations_project_id_trace_id_start_time"), table_name="observations")
