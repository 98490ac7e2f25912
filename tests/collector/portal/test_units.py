"""Pure parts of the portal: energy from counters, guarantee proration, charts, texts, accounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.portal import production as prod
from collector.portal.accounts import AccountError, AccountService
from collector.portal.i18n import LANGUAGES, format_kwh, messages, translate
from collector.portal.scope import DeviceGrant, MemberScope
from collector.portal.svg import bars_svg, nice_ceiling, power_curve_svg
from collector.registry.store_sync import sync_fleet
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.db import make_engine, migrate, session_factory

D = date(2026, 3, 1)


def test_daily_energy_from_counters() -> None:
    counters = {
        "a": {D: 1000.0, D + timedelta(1): 3500.0, D + timedelta(3): 6500.0},
        "b": {D: 50.0, D + timedelta(1): 1050.0},
    }
    daily = prod.daily_energy_kwh(counters)
    assert daily == {D + timedelta(1): 3.5, D + timedelta(3): 3.0}  # the gap lands on day 3


def test_counter_stepping_back_adds_nothing() -> None:
    counters = {"a": {D: 5000.0, D + timedelta(1): 100.0, D + timedelta(2): 1100.0}}
    assert prod.daily_energy_kwh(counters) == {D + timedelta(2): 1.0}


def test_scope_window_cuts_days() -> None:
    grant = DeviceGrant("a", "s", "c", 3.0, start_day=D + timedelta(2), end_day=D + timedelta(3))
    scope = MemberScope("M", (grant,))
    counters = {"a": {D + timedelta(i): 1000.0 * i for i in range(6)}}
    assert set(prod.daily_energy_kwh(counters, scope)) == {D + timedelta(2), D + timedelta(3)}
    assert not scope.allows("b") and scope.window("b") is None


def test_year_fraction_typical() -> None:
    assert prod.year_fraction_typical(date(2026, 12, 31)) == pytest.approx(1.0)
    assert prod.year_fraction_typical(date(2026, 1, 1)) < 0.002
    # Summer carries most of the year: by 30 June well under half the days, about half the energy.
    assert 0.45 < prod.year_fraction_typical(date(2026, 6, 30)) < 0.55


def test_local_midnight_on_dst_days() -> None:
    spring = prod.local_midnight_utc(date(2026, 3, 30)) - prod.local_midnight_utc(date(2026, 3, 29))
    autumn = prod.local_midnight_utc(date(2026, 10, 26)) - prod.local_midnight_utc(
        date(2026, 10, 25)
    )
    assert spring == timedelta(hours=23) and autumn == timedelta(hours=25)


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_nice_ceiling_is_at_or_above(value: float) -> None:
    top = nice_ceiling(value)
    assert top >= value and top <= value * 10.0001


def test_charts_escape_text() -> None:
    bars = [prod.PeriodBar("<b>&", 1.0, None)]
    out = bars_svg(bars, title='x"<script>')
    assert "<script>" not in out and "&lt;b&gt;&amp;" in out
    start = datetime(2026, 6, 1, tzinfo=UTC)
    curve = power_curve_svg([], start, start + timedelta(days=1), title="t", empty_text="geen")
    assert "geen" in curve and "polyline" not in curve


def test_every_text_in_both_languages() -> None:
    for key in messages():
        for lang in LANGUAGES:
            assert translate(key, lang)
    assert format_kwh(1234.56, "nl") == "1.234,6 kWh"
    assert format_kwh(1234.56, "en") == "1,234.6 kWh"
    templates = Path(__file__).resolve().parents[3] / "collector/portal/templates"
    import re

    used = set()
    for path in templates.glob("*.html"):
        used |= set(re.findall(r't\("([a-z_.]+)"', path.read_text()))
    assert used and used <= set(messages()), used - set(messages())


@pytest.fixture
def accounts(tmp_path: Path) -> AccountService:
    engine = make_engine(f"sqlite:///{tmp_path}/acc.sqlite3")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sync_fleet(session, to_registry_fleet(generate_fleet(2, 1)), source="test")
    return AccountService(sessions)


def test_links_expire_and_passwords_are_checked(accounts: AccountService) -> None:
    account = accounts.create_member_account("M0001")
    now = datetime.now(UTC)
    token = accounts.issue_link(account.account_id, "invite", now=now)
    with pytest.raises(AccountError, match="expired"):
        accounts.link_account(token, "invite", now=now + timedelta(days=15))
    with pytest.raises(AccountError, match="not valid"):
        accounts.link_account(token, "reset", now=now)  # an invitation is not a reset link
    with pytest.raises(AccountError, match="too short"):
        accounts.use_link(token, "invite", "kort", now=now)
    accounts.use_link(token, "invite", "lang-genoeg-1", now=now)
    with pytest.raises(AccountError, match="used"):
        accounts.use_link(token, "invite", "lang-genoeg-2", now=now)


def test_deactivation_ends_sessions(accounts: AccountService) -> None:
    account = accounts.create_member_account("M0002")
    accounts.use_link(accounts.issue_link(account.account_id, "invite"), "invite", "wachtwoord-12")
    cookie, _ws = accounts.login(account.email, "wachtwoord-12", remote="t")
    assert accounts.session_for(cookie) is not None
    accounts.set_active(account.account_id, False)
    assert accounts.session_for(cookie) is None
    with pytest.raises(AccountError):
        accounts.login(account.email, "wachtwoord-12", remote="t")
    # Sessions are stored hashed: the cookie value is not in the table.
    from sqlalchemy import select

    from collector.store.portal_models import PortalSessionRow

    with accounts._sessions() as session:
        stored = session.scalars(select(PortalSessionRow.token_sha256)).all()
    assert cookie not in stored and len(stored) == 1


def test_known_reset_counts_both_sides() -> None:
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    counters = {"a": {D: 10_000.0, D + timedelta(1): 700.0, D + timedelta(2): 3_700.0}}
    events = {"a": [prod.CounterEvent(at, before_wh=12_000.0, after_wh=200.0)]}
    daily = prod.daily_energy_kwh(counters, None, events)
    # 2 kWh on the old counter before the reset, 0.5 kWh on the new one after it.
    assert daily == {D + timedelta(1): pytest.approx(2.5), D + timedelta(2): 3.0}


def test_replacement_device_counts_from_its_first_value() -> None:
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    counters = {"new": {D: 1_400.0, D + timedelta(1): 4_400.0}}
    events = {"new": [prod.CounterEvent(at, before_wh=None, after_wh=1_000.0)]}
    assert prod.daily_energy_kwh(counters, None, events) == {D: 0.4, D + timedelta(1): 3.0}


def test_typical_share_of_a_calendar_year_matches() -> None:
    for day in (date(2026, 1, 31), date(2026, 7, 15), date(2026, 12, 31)):
        share = prod.typical_share(date(2026, 1, 1), day, date(2027, 1, 1))
        assert share == pytest.approx(prod.year_fraction_typical(day))
