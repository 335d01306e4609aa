"""Custom models of a project (api-semantics 5.8): list with the built-ins, get, create, delete.

Validation and the public ``Model`` object live in ``services.pricing.models`` (pure); this module adds the store and
keeps the ingestion price books in step: every create/delete invalidates the project's cached book, so the
next observation written is priced with the new set. Functions block on the database: call them from a worker
thread.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from lightfuse.services.common.clock import now_ms
from lightfuse.services.pricing.model_registry import ModelRegistry, model_from_row
from lightfuse.services.pricing.models import ModelValidationError, validate_model_create
from lightfuse.services.pricing.price_book import ModelPrice, PricingTier, load_builtin_models
from lightfuse.store.sql import models as model_store

__all__ = ["create_model", "delete_model", "find_builtin", "get_model", "list_models"]


def _sort_key(model: ModelPrice) -> tuple:
    # modelName asc, unit asc (nulls last), startDate desc (nulls last); then project models before
    # built-ins and the id, so that pages are stable
    return (
        model.model_name,
        model.unit is None,
        model.unit or "",
        model.start_date is None,
        -(model.start_date or 0),
        model.project_id is None,
        model.id,
    )


def _tier_json(tier: PricingTier) -> dict[str, Any]:
    return {
        "id": tier.id,
        "name": tier.name,
        "isDefault": tier.is_default,
        "priority": tier.priority,
        "conditions": tier.conditions,
        "prices": tier.prices,
    }


def find_builtin(model_id: str) -> ModelPrice | None:
    return next((m for m in load_builtin_models() if m.id == model_id), None)


def list_models(engine: Engine, project_id: str) -> list[ModelPrice]:
    """The project's models and the built-ins, in listing order."""
    with engine.connect() as conn:
        rows = model_store.list_project_models(conn, project_id)
    return sorted([model_from_row(r) for r in rows] + load_builtin_models(), key=_sort_key)


def get_model(engine: Engine, project_id: str, model_id: str) -> ModelPrice | None:
    with engine.connect() as conn:
        row = model_store.get_project_model(conn, project_id, model_id)
    return model_from_row(row) if row else find_builtin(model_id)


def create_model(engine: Engine, registry: ModelRegistry, project_id: str, body: Any) -> ModelPrice:
    """Validate and store a CreateModelRequest; raises ModelValidationError (HTTP 400) on any problem."""
    spec = validate_model_create(body)
    duplicate = f"A model named '{spec['model_name']}' already exists in this project"
    with engine.connect() as conn:
        if model_store.get_project_model_by_name(conn, project_id, spec["model_name"]) is not None:
            raise ModelValidationError(duplicate)
    now = now_ms()
    values = {**spec, "project_id": project_id, "created_at": now, "updated_at": now}
    values["pricing_tiers"] = [_tier_json(t) for t in spec["pricing_tiers"]]
    try:
        # the duplicate check above ran in its own transaction: on SQLite a read transaction cannot be
        # upgraded to a write after the ingestion writer committed; the unique constraint closes the race
        with engine.begin() as conn:
            model_store.create_model(conn, values)
    except IntegrityError:
        raise ModelValidationError(duplicate) from None
    registry.invalidate(project_id)
    return model_from_row(values)


def delete_model(engine: Engine, registry: ModelRegistry, project_id: str, model_id: str) -> bool:
    """Delete a project-owned model; False when the project has no model with this id."""
    with engine.begin() as conn:
        deleted = model_store.delete_model(conn, project_id, model_id)
    if deleted:
        registry.invalidate(project_id)
    return bool(deleted)
