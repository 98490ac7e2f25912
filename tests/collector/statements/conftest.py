"""Statement tests use the settlement tests' hand-computable fleet and readings.

``statement_cases.py`` (next to this file) issues real runs with the settlement engine into a
temporary store; ``settle_cases.py`` from ``tests/collector/settlement`` provides the data.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from collector.devtools.services import free_port
from collector.store.testing import temporary_database

_HERE = Path(__file__).resolve().parent
for folder in (_HERE, _HERE.parent / "settlement"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(scope="module")
def issued() -> Iterator[tuple[Engine, str, str]]:
    """A SQLite store with the registry and the issued March and April 2026 runs (read only)."""
    from statement_cases import issue_march_and_april

    with temporary_database("sqlite") as engine:
        with Session(engine) as session:
            march, april = issue_march_and_april(session)
        yield engine, march, april


@pytest.fixture
def smtp() -> Iterator[tuple[int, Any]]:
    """A real local SMTP server (aiosmtpd) on a free port, and what it received."""
    from smtp_inbox import Inbox

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
