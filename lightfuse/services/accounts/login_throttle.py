"""Limits on password guessing: failures counted per account (normalised email) and per client address.

After ``limit`` failures of a key, the key is locked for ``base_s`` seconds, doubling with every further failure
up to ``max_s`` (failures are only counted when a password was actually checked, so attempts refused while
locked do not extend the lock). A key's count is forgotten after ``forget_s`` without failures; a successful
sign-in clears the account's count (not the address's: one good account must not reset guessing at others).

The counts live behind ``ThrottleStore``. ``SqlThrottleStore`` keeps them in the database, so all replicas
share them and the server holds no per-key memory; quiet keys are pruned, so the table stays small. A Redis
store can replace it with the same four methods.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from lightfuse.store.sql import web_auth as store

_PRUNE_EVERY_S = 60


@dataclass(frozen=True)
class ThrottlePolicy:
    account_limit: int = 5
    address_limit: int = 20
    base_s: float = 30.0
    max_s: float = 900.0
    forget_s: float = 3600.0


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    limit: int


class Throttled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ThrottleStore(Protocol):
    """Failure counts by key; times are epoch milliseconds. ``counts`` rows: failures, last_failure_at,
    locked_until. ``record_failure`` must count atomically (concurrent failures of several replicas)."""

    def counts(self, keys: Iterable[str]) -> dict[str, dict]: ...

    def record_failure(self, key: str, now: int, forget_before: int) -> int: ...

    def lock(self, key: str, until: int) -> None: ...

    def clear(self, key: str) -> None: ...

    def prune(self, quiet_before: int, now: int) -> int: ...


class SqlThrottleStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def counts(self, keys: Iterable[str]) -> dict[str, dict]:
        with self._engine.connect() as conn:
            return store.get_throttle(conn, keys)

    def record_failure(self, key: str, now: int, forget_before: int) -> int:
        with self._engine.begin() as conn:
            return store.record_failure(conn, key, now, forget_before)

    def lock(self, key: str, until: int) -> None:
        with self._engine.begin() as conn:
            store.lock_key(conn, key, until)

    def clear(self, key: str) -> None:
        with self._engine.begin() as conn:
            store.clear_throttle(conn, key)

    def prune(self, quiet_before: int, now: int) -> int:
        with self._engine.begin() as conn:
            return store.prune_throttle(conn, quiet_before, now)


def _digest(text: str) -> str:
    # fixed-size keys whatever the input, and no email addresses stored in clear
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def normalise_email(email: str | None) -> str:
    return (email or "").strip().lower()


def address_key(address: str | None) -> str:
    """An IPv4 address as is; an IPv6 address by its /64, which one host usually has whole."""
    address = (address or "unknown").strip()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _digest(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip)


class LoginThrottle:
    def __init__(self, store_: ThrottleStore, policy: ThrottlePolicy) -> None:
        self._store = store_
        self.policy = policy
        self._lock = threading.Lock()
        self._next_prune = 0.0

    # --- keys -----------------------------------------------------------------------------------------------

    def account(self, email: str | None) -> ThrottleKey:
        return ThrottleKey("acct:" + _digest(normalise_email(email)), self.policy.account_limit)

    def address(self, address: str | None, purpose: str = "addr") -> ThrottleKey:
        return ThrottleKey(f"{purpose}:{address_key(address)}", self.policy.address_limit)

    # --- checks ---------------------------------------------------------------------------------------------

    def check(self, keys: Iterable[ThrottleKey], now_s: float | None = None) -> None:
        """Raise ``Throttled`` (with the seconds to wait) when any of the keys is locked."""
        now = int((time.time() if now_s is None else now_s) * 1000)
        rows = self._store.counts([k.key for k in keys])
        locked_until = max((r["locked_until"] for r in rows.values()), default=0)
        if locked_until > now:
            raise Throttled(max(1, -(-(locked_until - now) // 1000)))

    def failed(self, keys: Iterable[ThrottleKey], now_s: float | None = None) -> None:
        now = int((time.time() if now_s is None else now_s) * 1000)
        forget_before = now - int(self.policy.forget_s * 1000)
        for k in keys:
            failures = self._store.record_failure(k.key, now, forget_before)
            lock_s = self.lock_seconds(failures, k.limit)
            if lock_s:
                self._store.lock(k.key, now + int(lock_s * 1000))
        self._maybe_prune(now)

    def succeeded(self, key: ThrottleKey) -> None:
        self._store.clear(key.key)

    def lock_seconds(self, failures: int, limit: int) -> float:
        """0 below the limit; then base, doubling per further failure, capped."""
        if failures < limit:
            return 0
        p = self.policy
        return min(p.base_s * 2 ** min(failures - limit, 32), p.max_s)

    def _maybe_prune(self, now: int) -> None:
        with self._lock:
            if time.monotonic() < self._next_prune:
                return
            self._next_prune = time.monotonic() + _PRUNE_EVERY_S
        self._store.prune(now - int(self.policy.forget_s * 1000), now)
