"""Browser sessions and the sign-in throttle's failure counts. Functions take an open Connection."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, case, delete, or_, select, update

from lightfuse.store.sql.database import insert_for
from lightfuse.store.sql.tables import auth_throttle, users, web_sessions

# --- sessions -----------------------------------------------------------------------------------------------


def create_session(conn: Connection, *, id_hash: str, user_id: str, now: int, expires_at: int) -> None:
    conn.execute(
        web_sessions.insert().values(
            id_hash=id_hash, user_id=user_id, created_at=now, last_seen_at=now, expires_at=expires_at
        )
    )


def get_live_session(conn: Connection, id_hash: str, now: int) -> dict | None:
    """The session row joined with its user's row, or None when it is unknown, revoked or expired."""
    stmt = (
        select(
            web_sessions.c.user_id,
            web_sessions.c.last_seen_at,
            web_sessions.c.expires_at,
            users.c.email,
            users.c.name,
            users.c.admin,
        )
        .join(users, users.c.id == web_sessions.c.user_id)
        .where(
            web_sessions.c.id_hash == id_hash,
            web_sessions.c.revoked_at.is_(None),
            web_sessions.c.expires_at > now,
        )
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def touch_session(conn: Connection, id_hash: str, now: int) -> None:
    conn.execute(update(web_sessions).where(web_sessions.c.id_hash == id_hash).values(last_seen_at=now))


def revoke_session(conn: Connection, id_hash: str, now: int) -> None:
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.id_hash == id_hash, web_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_user_sessions(conn: Connection, user_id: str, now: int, keep_id_hash: str | None = None) -> int:
    """Revoke every live session of the user (but ``keep_id_hash``); the number revoked."""
    stmt = update(web_sessions).where(web_sessions.c.user_id == user_id, web_sessions.c.revoked_at.is_(None))
    if keep_id_hash is not None:
        stmt = stmt.where(web_sessions.c.id_hash != keep_id_hash)
    return conn.execute(stmt.values(revoked_at=now)).rowcount or 0


def delete_dead_sessions(conn: Connection, *, expired_before: int, revoked_before: int) -> int:
    result = conn.execute(
        delete(web_sessions).where(
            or_(web_sessions.c.expires_at < expired_before, web_sessions.c.revoked_at < revoked_before)
        )
    )
    return result.rowcount or 0


# --- sign-in throttle ---------------------------------------------------------------------------------------


def get_throttle(conn: Connection, keys: Iterable[str]) -> dict[str, dict]:
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(select(auth_throttle).where(auth_throttle.c.key.in_(keys))).mappings()
    return {r["key"]: dict(r) for r in rows}


def record_failure(conn: Connection, key: str, now: int, forget_before: int) -> int:
    """Count one failure for ``key`` (starting over when its last failure is older than ``forget_before``);
    the new count. One atomic upsert, so concurrent failures on several replicas all count."""
    stale = auth_throttle.c.last_failure_at < forget_before
    stmt = (
        insert_for(conn)(auth_throttle)
        .values(key=key, failures=1, last_failure_at=now, locked_until=0)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case((stale, 1), else_=auth_throttle.c.failures + 1),
                "locked_until": case((stale, 0), else_=auth_throttle.c.locked_until),
                "last_failure_at": now,
            },
        )
        .returning(auth_throttle.c.failures)
    )
    return conn.execute(stmt).scalar_one()


def lock_key(conn: Connection, key: str, until: int) -> None:
    conn.execute(update(auth_throttle).where(auth_throttle.c.key == key).values(locked_until=until))


def clear_throttle(conn: Connection, key: str) -> None:
    conn.execute(delete(auth_throttle).where(auth_throttle.c.key == key))


def prune_throttle(conn: Connection, quiet_before: int, now: int) -> int:
    """Forget keys whose last failure is older than ``quiet_before`` and that are not locked any more."""
    result = conn.execute(
        delete(auth_throttle).where(
            auth_throttle.c.last_failure_at < quiet_before, auth_throttle.c.locked_until <= now
        )
    )
    return result.rowcount or 0
