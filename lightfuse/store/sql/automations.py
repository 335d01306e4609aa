"""Automations, their delivery outbox and attempt log. Functions take an open Connection (the caller owns the
transaction), except ``claim_due``, whose claim must be its own short transaction.

Claiming is what keeps two workers (replicas) from sending one delivery twice: a row is taken by an UPDATE
that moves it from pending (or from an expired lease) to ``sending`` under a fresh ``lease_owner``, and only
the rows that UPDATE returned belong to the caller. On Postgres the candidates are picked ``FOR UPDATE SKIP
LOCKED``, so concurrent claimers take different rows instead of waiting on each other; on SQLite the claim
runs in an IMMEDIATE transaction, so it holds the database's single write lock and claimers run one after
the other. Results are written back only while the caller still holds the lease (``lease_owner`` matches).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from lightfuse.store.sql.tables_automations import automation_attempts, automation_deliveries, automations
from lightfuse.store.sql.transactions import write_transaction

# --- automations ----------------------------------------------------------------------------------------------


def create_automation(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(automations.insert().values(**row))


def list_automations(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(automations)
        .where(automations.c.project_id == project_id)
        .order_by(automations.c.created_at, automations.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get_automation(conn: Connection, project_id: str, automation_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(automations).where(
                automations.c.project_id == project_id, automations.c.id == automation_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def get_automation_by_id(conn: Connection, automation_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(automations).where(automations.c.id == automation_id)).mappings().first()
    return dict(row) if row else None


def update_automation(conn: Connection, project_id: str, automation_id: str, values: dict[str, Any]) -> bool:
    stmt = (
        update(automations)
        .where(automations.c.project_id == project_id, automations.c.id == automation_id)
        .values(**values)
    )
    return conn.execute(stmt).rowcount == 1


def delete_automation(conn: Connection, project_id: str, automation_id: str) -> bool:
    # children first: SQLite enforces no foreign keys' ON DELETE unless asked, so nothing cascades there
    ids = select(automation_deliveries.c.id).where(automation_deliveries.c.automation_id == automation_id)
    conn.execute(delete(automation_attempts).where(automation_attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(automation_deliveries).where(automation_deliveries.c.automation_id == automation_id))
    stmt = delete(automations).where(
        automations.c.project_id == project_id, automations.c.id == automation_id
    )
    return conn.execute(stmt).rowcount == 1


def enabled_automations(conn: Connection, project_id: str, source: str) -> list[dict[str, Any]]:
    stmt = select(automations).where(
        automations.c.project_id == project_id,
        automations.c.event_source == source,
        automations.c.enabled.is_(True),
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def add_failure(conn: Connection, automation_id: str, now: int, disable_at: int) -> None:
    """One more delivery given up on; the automation is disabled when ``disable_at`` follow each other."""
    conn.execute(
        update(automations)
        .where(automations.c.id == automation_id)
        .values(consecutive_failures=automations.c.consecutive_failures + 1, updated_at=now)
    )
    conn.execute(
        update(automations)
        .where(automations.c.id == automation_id, automations.c.consecutive_failures >= disable_at)
        .values(enabled=False)
    )


def reset_failures(conn: Connection, automation_id: str) -> None:
    conn.execute(
        update(automations)
        .where(automations.c.id == automation_id, automations.c.consecutive_failures != 0)
        .values(consecutive_failures=0)
    )


# --- deliveries -----------------------------------------------------------------------------------------------


def add_delivery(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(automation_deliveries.insert().values(**row))


def claim_due(engine: Engine, owner: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
    """Take up to ``limit`` due deliveries for ``owner`` until ``now + lease_ms``: pending ones whose time
    has come, and ones whose lease ran out (their worker died mid-send). Committed before returning."""
    d = automation_deliveries.c
    due = or_(
        and_(d.status == "pending", d.next_attempt_at <= now),
        and_(d.status == "sending", d.lease_until <= now),
    )
    # a plain read first: most polls find nothing, and on SQLite the claim takes the database's write lock
    with engine.connect() as conn:
        if conn.execute(select(d.id).where(due).limit(1)).first() is None:
            return []
    with write_transaction(engine) as conn:
        candidates = select(d.id).where(due).order_by(d.next_attempt_at).limit(limit)
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(automation_deliveries)
            # the condition again: on Postgres a row may have changed between the pick and the lock
            .where(d.id.in_(candidates.scalar_subquery()), due)
            .values(status="sending", lease_owner=owner, lease_until=now + lease_ms, updated_at=now)
            .returning(*automation_deliveries.c)
        )
        return [dict(r) for r in conn.execute(stmt).mappings()]


def finish_attempt(
    conn: Connection, delivery_id: str, owner: str, values: dict[str, Any], attempt: dict[str, Any]
) -> bool:
    """Record an attempt and the delivery's new state, if ``owner`` still holds the lease."""
    stmt = (
        update(automation_deliveries)
        .where(
            automation_deliveries.c.id == delivery_id,
            automation_deliveries.c.status == "sending",
            automation_deliveries.c.lease_owner == owner,
        )
        .values(lease_owner=None, lease_until=None, **values)
    )
    if conn.execute(stmt).rowcount != 1:
        return False
    conn.execute(automation_attempts.insert().values(**attempt))
    return True


def prune_finished(engine: Engine, before: int, limit: int = 1000) -> int:
    """Delete up to ``limit`` succeeded or failed deliveries (with their attempts) last changed before
    ``before``; one short write transaction, so the caller loops while it returns ``limit``."""
    d = automation_deliveries.c
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                select(d.id).where(d.status.in_(("succeeded", "failed")), d.updated_at < before).limit(limit)
            )
        ]
    if not ids:
        return 0
    with write_transaction(engine) as conn:
        conn.execute(delete(automation_attempts).where(automation_attempts.c.delivery_id.in_(ids)))
        stmt = delete(automation_deliveries).where(d.id.in_(ids), d.status.in_(("succeeded", "failed")))
        return conn.execute(stmt).rowcount


def list_deliveries(
    conn: Connection, project_id: str, automation_id: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(automation_deliveries).where(automation_deliveries.c.project_id == project_id)
    if automation_id is not None:
        stmt = stmt.where(automation_deliveries.c.automation_id == automation_id)
    stmt = stmt.order_by(automation_deliveries.c.created_at.desc(), automation_deliveries.c.id).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def list_attempts(conn: Connection, delivery_ids: list[str]) -> list[dict[str, Any]]:
    if not delivery_ids:
        return []
    stmt = (
        select(automation_attempts)
        .where(automation_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(automation_attempts.c.delivery_id, automation_attempts.c.attempt)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def count_deliveries(conn: Connection, project_id: str) -> int:
    stmt = select(func.count()).where(automation_deliveries.c.project_id == project_id)
    return int(conn.execute(stmt).scalar_one())
