"""Relational store (SQLAlchemy 2 + alembic): registry tables here, ledger tables beside them."""
