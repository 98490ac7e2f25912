"""Headless Chromium (Debian's, driven by Playwright): a member and an operator through the
main pages. Screenshots go to the test's temporary directory, and to docs/screenshots/ when
ZONNEWIJK_UPDATE_SCREENSHOTS=1 (how the committed pictures were made)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import PASSWORD_A, PASSWORD_OP, PortalEnv

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"portal-{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert path.stat().st_size > 5000
    if os.environ.get("ZONNEWIJK_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / path.name)


def _login(page: object, env: PortalEnv, email: str, password: str) -> None:
    page.goto(f"{env.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_member_journey(browser: object, portal_env: PortalEnv, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="nl-NL")  # type: ignore[attr-defined]
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{portal_env.url}/overview")
    assert page.url.endswith("/login")  # not logged in: sent to the login page
    _shot(page, tmp_path, "login")
    page.fill("input[name=email]", portal_env.email_a)
    page.fill("input[name=password]", "verkeerd-wachtwoord")
    page.click("button[type=submit]")
    assert page.locator(".error").is_visible()
    page.fill("input[name=password]", PASSWORD_A)
    page.click("button[type=submit]")
    page.wait_for_url("**/overview")
    assert page.locator("h1").inner_text() == "Uw zonnepanelen"
    assert page.locator("svg.chart").count() >= 5
    assert "storing" in page.locator("#alerts").inner_text()
    assert page.locator("#today-kwh").inner_text().endswith("kWh")
    _shot(page, tmp_path, "member-overview")
    page.click("text=Afrekeningen")
    page.wait_for_url("**/statements")
    page.click("text=Bekijk")
    assert "Totaal incl. btw" in page.content()
    _shot(page, tmp_path, "member-statement")
    page.click("text=English")
    page.wait_for_load_state()
    assert "Statements" in page.locator("h1").inner_text()
    page.goto(f"{portal_env.url}/overview")
    assert page.locator("h1").inner_text() == "Your solar panels"
    # Nothing was fetched from anywhere but the portal itself (no CDN).
    assert all(u.startswith(portal_env.url) for u in requests), requests
    page.click("text=Nederlands")
    page.click("text=Uitloggen")
    page.wait_for_url("**/login")
    page.goto(f"{portal_env.url}/overview")
    assert page.url.endswith("/login")
    context.close()


def test_member_on_a_phone(browser: object, portal_env: PortalEnv, tmp_path: Path) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    _login(page, portal_env, portal_env.email_a, PASSWORD_A)
    page.wait_for_url("**/overview")
    # The page fits the phone's width (no sideways scrolling).
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    _shot(page, tmp_path, "member-phone")
    context.close()


def test_operator_journey(browser: object, portal_env: PortalEnv, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, portal_env, portal_env.email_op, PASSWORD_OP)
    page.wait_for_url("**/operator")
    summary = page.locator("#fleet-summary").inner_text()
    assert summary.startswith("6 omvormers"), summary
    _shot(page, tmp_path, "operator-fleet")
    page.click("nav >> text=Meldingen")
    page.wait_for_url("**/operator/alerts")
    _shot(page, tmp_path, "operator-alerts")
    rows_before = page.locator("button:has-text('Bevestig')").count()
    assert rows_before >= 1
    page.locator("button:has-text('Bevestig')").first.click()
    page.wait_for_url("**/operator/alerts")
    assert page.locator("button:has-text('Bevestig')").count() == rows_before - 1
    assert "acknowledged (beheer@zonnewijk.test)" in page.content()
    page.click("text=Afrekenrondes")
    page.click("text=2026-10.1")
    assert page.locator("tbody tr").count() == 2
    _shot(page, tmp_path, "operator-settlement")
    page.click("nav >> text=Leden")
    page.wait_for_url("**/operator/members")
    page.locator("tr:has-text('M0002') button:has-text('Uitnodigen')").click()
    link = page.locator("#invite-link").inner_text()
    assert link.startswith("http://portal.test/invite/")
    _shot(page, tmp_path, "operator-members")
    context.close()
    # The new member follows the link and sets a password.
    member = browser.new_context(viewport={"width": 800, "height": 800})  # type: ignore[attr-defined]
    page = member.new_page()
    page.goto(link.replace("http://portal.test", portal_env.url))
    _shot(page, tmp_path, "set-password")
    page.fill("input[name=password]", "mijn-eigen-wachtwoord")
    page.fill("input[name=repeat]", "mijn-eigen-wachtwoord")
    page.click("button[type=submit]")
    page.wait_for_url("**/overview")
    assert page.locator("h1").inner_text() == "Uw zonnepanelen"
    member.close()
