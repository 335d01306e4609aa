"""The masked secret key (web UI key list, the key shown after creation) never gives a short secret away."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lightfuse.app import build_services
from lightfuse.config import InitSettings, load_settings
from lightfuse.services.auth.api_keys import display_secret
from lightfuse.store.sql.tables import api_keys


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("sk-lf-", "sk-lf-..."),
        ("sk-lf-a", "sk-lf-..."),
        ("sk-lf-ab", "sk-lf-...b"),
        ("sk-lf-init", "sk-lf-...it"),
        ("sk-lf-abcdefgh", "sk-lf-...efgh"),
        ("sk-lf-0a1b2c3d-1111-2222-3333-444455556666", "sk-lf-...6666"),
    ],
)
def test_display_shows_at_most_four_characters_and_half_of_the_secret(secret: str, shown: str) -> None:
    display = display_secret(secret)
    assert display == shown
    revealed = display.removeprefix("sk-lf-...")
    body = secret.removeprefix("sk-lf-")
    assert len(revealed) <= min(4, len(body) // 2)


def _displays(engine) -> list[str]:
    with engine.connect() as c:
        return c.execute(sa.select(api_keys.c.display_secret_key)).scalars().all()


def test_short_provisioned_secret_is_masked_also_when_stored_by_an_older_version(backend) -> None:
    init = InitSettings(
        org_id="org",
        org_name="Org",
        project_id="p1",
        project_name="P1",
        project_public_key="pk-lf-init",
        project_secret_key="sk-lf-init",
    )
    services = build_services(load_settings(**backend, init=init))
    try:
        assert _displays(services.engine) == ["sk-lf-...it"]
        # what the former display_secret stored: the whole 4-character secret after the prefix
        with services.engine.begin() as c:
            c.execute(sa.update(api_keys).values(display_secret_key="sk-lf-...init"))
        services.accounts.provision(init)  # every start provisions again
        assert _displays(services.engine) == ["sk-lf-...it"]
    finally:
        services.engine.dispose()
