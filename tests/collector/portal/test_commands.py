"""zonnewijk members invite / members list / tokens create / tokens revoke on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.portal.accounts import AccountService
from collector.registry.store_sync import sync_fleet
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.db import make_engine, migrate, session_factory


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    engine = make_engine(url)
    migrate(engine)
    with session_factory(engine).begin() as session:
        sync_fleet(session, to_registry_fleet(generate_fleet(3, 1)), source="test")
    engine.dispose()
    return url


def test_invite_prints_a_working_link(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "members",
            "invite",
            "M0002",
            "--database-url",
            database_url,
            "--base-url",
            "https://portaal.example",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://portaal.example/invite/")
    accounts = AccountService(session_factory(make_engine(database_url)))
    account = accounts.link_account(link.rsplit("/", 1)[1], "invite")
    assert account.member_id == "M0002" and not account.has_password
    assert main(["members", "list", "--database-url", database_url]) == 0
    assert "invited" in capsys.readouterr().out


def test_invite_unknown_member_and_operator(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["members", "invite", "M9999", "--database-url", database_url]) == 1
    assert "no member 'M9999'" in capsys.readouterr().err
    code = main(
        [
            "members",
            "invite",
            "--operator",
            "Beheer@Example.org",
            "--name",
            "Beheer",
            "--database-url",
            database_url,
        ]
    )
    assert code == 0
    accounts = AccountService(session_factory(make_engine(database_url)))
    op = accounts.by_email("beheer@example.org")
    assert op is not None and op.is_operator


def test_tokens_create_and_revoke(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "create", "grafana", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    accounts = AccountService(session_factory(make_engine(database_url)))
    assert token.startswith("zw_") and accounts.api_token_valid(token)
    token_id = int(out.split()[2])
    assert main(["tokens", "revoke", str(token_id), "--database-url", database_url]) == 0
    assert not accounts.api_token_valid(token)


def test_unmigrated_database_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="zonnewijk db migrate"):
        main(["tokens", "create", "x", "--database-url", f"sqlite:///{tmp_path}/empty.sqlite3"])
