"""Alembic environment: runs on the connection handed over by collector.store.db.

Run migrations with ``zonnewijk db migrate`` (or :func:`collector.store.db.migrate`), draft a
new one from the models with ``zonnewijk db revision -m "what changed"``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from collector.store.db import import_models
from collector.store.models import Base

import_models()
config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("run migrations through `zonnewijk db migrate`")
        with create_engine(url).begin() as own:
            _run(own)
    else:
        _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations()
