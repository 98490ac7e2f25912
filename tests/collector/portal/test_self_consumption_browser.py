"""Headless Chromium (Debian's, driven by Playwright): a member with a P1 meter opens the
self-consumption page from the menu. The screenshot goes to docs/screenshots/ when
ZONNEWIJK_UPDATE_SCREENSHOTS=1 (how the committed picture was made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import PASSWORD_A, PortalEnv
from .test_browser import ARGS, CHROMIUM, _login, _shot
from .test_self_consumption_page import meter_home

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

__all__ = ["meter_home"]


def test_member_sees_self_consumption(
    portal_env: PortalEnv, meter_home: object, tmp_path: Path
) -> None:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="nl-NL")
        _login(page, portal_env, portal_env.email_a, PASSWORD_A)
        page.click("text=Eigen verbruik")
        page.wait_for_selector("#month-rate")
        assert page.url.endswith("/self-consumption")
        assert page.locator("svg.chart polyline.use").count() == 1
        assert page.locator("svg.chart polygon.area").count() == 1
        assert "%" in page.inner_text("#month-rate")
        assert "tussen" in page.inner_text("#advice")
        assert "1 januari 2027" in page.inner_text("#help-2027")
        _shot(page, tmp_path, "member-self-consumption")
        browser.close()
