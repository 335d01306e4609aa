"""Per-project price books: the project's own models in front of the built-in table, cached until changed."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.pricing.price_book import ModelPrice, PriceBook, PricingTier
from lightfuse.store.sql import models as model_store


def model_from_row(row: dict[str, Any]) -> ModelPrice:
    tiers = [
        PricingTier(
            id=t["id"],
            name=t["name"],
            is_default=bool(t["isDefault"]),
            priority=int(t["priority"]),
            conditions=list(t.get("conditions") or []),
            prices={k: float(v) for k, v in (t.get("prices") or {}).items()},
        )
        for t in row["pricing_tiers"] or []
    ]
    return ModelPrice(
        id=row["id"],
        project_id=row["project_id"],
        model_name=row["model_name"],
        match_pattern=row["match_pattern"],
        start_date=row["start_date"],
        unit=row["unit"],
        tokenizer_id=row["tokenizer_id"],
        tokenizer_config=row["tokenizer_config"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        pricing_tiers=tiers,
    )


class ModelRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._books: dict[str, PriceBook] = {}
        # bumped by invalidate(): a book built from rows read before a model change must not be cached after it
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def price_book(self, conn: Connection | None, project_id: str) -> PriceBook:
        book = self._books.get(project_id)
        if book is not None:
            return book
        generation = self._generations.get(project_id, 0)
        if conn is None:
            with self._engine.connect() as c:
                rows = model_store.list_project_models(c, project_id)
        else:
            rows = model_store.list_project_models(conn, project_id)
        book = PriceBook([model_from_row(r) for r in rows])
        with self._lock:
            if self._generations.get(project_id, 0) == generation:
                self._books[project_id] = book
        return book

    def invalidate(self, project_id: str) -> None:
        with self._lock:
            self._generations[project_id] = self._generations.get(project_id, 0) + 1
            self._books.pop(project_id, None)
