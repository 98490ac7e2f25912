"""The portal for ``zonnewijk demo``: a store with the simulated fleet, two logins, uvicorn.

The demo (owned by the demo's area) can start it next to its InfluxDB with::

    with demo_portal(fleet, influx_url=..., influx_db=..., workdir=...) as portal:
        print(portal.banner())

Passwords are random per run and printed once; the store is a SQLite file in ``workdir``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from collector.portal.accounts import AccountService
from collector.portal.app import create_app
from collector.portal.config import PortalConfig
from collector.portal.serving import serve_in_thread
from collector.simulator.fleet import Fleet


@dataclass(frozen=True)
class DemoPortal:
    url: str
    member_email: str
    member_password: str
    operator_email: str
    operator_password: str

    def banner(self) -> str:
        return (
            f"portal: {self.url}\n"
            f"  member:   {self.member_email} / {self.member_password}\n"
            f"  operator: {self.operator_email} / {self.operator_password}"
        )


@contextmanager
def demo_portal(
    fleet: Fleet,
    *,
    influx_url: str,
    influx_db: str,
    workdir: Path,
    port: int | None = None,
) -> Iterator[DemoPortal]:
    """Serve the portal over the demo's InfluxDB with the simulated fleet's registry."""
    from collector.registry.store_sync import sync_fleet
    from collector.simulator.fleet_export import to_registry_fleet
    from collector.store.db import make_engine, migrate, session_factory

    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir.resolve()}/portal-demo.sqlite3"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    registry = to_registry_fleet(fleet)
    with sessions.begin() as session:
        sync_fleet(session, registry, source="demo")
    accounts = AccountService(sessions)
    member = accounts.create_member_account(registry.members[0].member_id)
    operator = accounts.create_operator_account("beheer@zonnewijk.invalid", "Beheer (demo)")
    passwords = {}
    for account in (member, operator):
        password = "demo-" + secrets.token_urlsafe(9)
        accounts.use_link(accounts.issue_link(account.account_id, "invite"), "invite", password)
        passwords[account.account_id] = password
    config = PortalConfig(
        database_url=database_url,
        influx_url=influx_url,
        influx_db=influx_db,
        secret_key=secrets.token_urlsafe(32),
    )
    try:
        with serve_in_thread(create_app(config), port=port) as url:
            yield DemoPortal(
                url=url,
                member_email=member.email,
                member_password=passwords[member.account_id],
                operator_email=operator.email,
                operator_password=passwords[operator.account_id],
            )
    finally:
        engine.dispose()
