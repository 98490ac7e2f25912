"""Engines, sessions and migrations of the relational store.

SQLite (a file under the data directory) by default, PostgreSQL by URL
(``postgresql+psycopg://user:pass@host/db``). Migrations are alembic scripts shipped in the
package and run programmatically (:func:`migrate`, ``zonnewijk db migrate``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Modules whose models share :class:`collector.store.models.Base`; imported before migrations.
MODEL_MODULES = (
    "collector.store.models",
    "collector.store.ledger_models",
    "collector.store.alert_models",
    "collector.store.portal_models",
    "collector.store.gateway_models",
    "collector.store.consent_models",
)


def import_models() -> None:
    """Import every model module that exists, so ``Base.metadata`` knows all tables."""
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (the driver this project installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> Engine:
    """An engine for the store.

    Parameters
    ----------
    url
        SQLAlchemy URL; ``sqlite:///path`` creates the file's directory.
    schema
        PostgreSQL only: put every table (and alembic's version table) in this schema, via the
        connection's ``search_path`` (tests use one schema per run).
    """
    url = normalise_url(url)
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    engine = create_engine(url, echo=echo, connect_args=connect_args)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")  # SQLite ignores foreign keys otherwise
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Any | None = None) -> Config:
    """An alembic configuration for the packaged migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database schema to ``revision`` (default: the newest); returns the revision."""
    import_models()
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Step the schema back to ``revision`` (``base`` removes every table)."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_differences(engine: Engine) -> list[Any]:
    """Differences between the models and a migrated database (empty when they agree)."""
    from alembic.autogenerate import compare_metadata

    from collector.store.models import Base

    import_models()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def draft_revision(engine: Engine, message: str) -> None:
    """Write a new migration script from the difference between models and ``engine``'s schema.

    Review the generated file before committing it.
    """
    import_models()
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
