"""Throw-away migrated databases for tests: a SQLite file or a private PostgreSQL schema.

``temporary_database("postgresql")`` creates a uniquely named schema in the PostgreSQL test
database (``ZONNEWIJK_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
points the engine's ``search_path`` at it, migrates it, and drops it afterwards. Used by the
registry and ledger tests to run the same test on both backends.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from collector.store.db import make_engine, migrate

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
Backend = Literal["sqlite", "postgresql"]


class DatabaseUnavailableError(RuntimeError):
    """The PostgreSQL test server cannot be reached."""


def postgres_test_url() -> str:
    return os.environ.get("ZONNEWIJK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


@contextmanager
def temporary_database(
    backend: Backend, *, directory: Path | None = None, run_migrations: bool = True
) -> Iterator[Engine]:
    """A fresh database at the newest schema revision, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            engine = make_engine(f"sqlite:///{tmp}/store.sqlite3")
            try:
                if run_migrations:
                    migrate(engine)
                yield engine
            finally:
                engine.dispose()
        return
    schema = f"zw_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_test_url())
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        raise DatabaseUnavailableError(f"PostgreSQL test database unreachable: {exc}") from exc
    engine = make_engine(postgres_test_url(), schema=schema)
    try:
        if run_migrations:
            migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
