"""Alembic migrations of the relational store (run with ``zonnewijk db migrate``)."""
