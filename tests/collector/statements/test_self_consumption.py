"""The month's self-consumption on a statement: the home's own meter days in a real InfluxDB,
cut at the contract's days, shown for information and absent without meter data.

Site S1 changes hands on 16 March 2026 (C1 of M1 ends on the 15th, C2 of M2 starts on the
16th). Every local day of March at S1 is written as the self-consumption job writes it: 10 kWh
produced, 3 kWh used at home, 7 kWh exported, 5 kWh imported, 8 kWh consumed. M1's statement
counts 15 days, M2's the other 16; M3's home (S2) has no meter data and no box.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from test_statement_pdf import pdf_text

from collector.settlement.self_consumption import day_span
from collector.statements.data import load_statement
from collector.statements.render import render_html, render_pdf, render_run
from collector.statements.self_consumption import SiteDays, month_self_consumption
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import HOUSEHOLD_DAILY_MEASUREMENT


def _write_march_days(influx: InfluxClient, site_id: str) -> None:
    points = []
    day = date(2026, 3, 1)
    while day < date(2026, 4, 1):
        fields: dict[str, float | int] = {
            "production_kwh": 10.0,
            "consumption_kwh": 8.0,
            "import_kwh": 5.0,
            "export_kwh": 7.0,
            "self_consumed_kwh": 3.0,
            "covered_s": 86_400,
        }
        tags = {"site": site_id, "gateway": f"gw-{site_id.lower()}"}
        points.append(Point(HOUSEHOLD_DAILY_MEASUREMENT, tags, fields, day_span(day)[0]))
        day += timedelta(days=1)
    influx.write_points(points)


def test_month_sums_the_contract_days_only(influx: InfluxClient) -> None:
    _write_march_days(influx, "S1")
    month = month_self_consumption(influx, [SiteDays("S1", date(2026, 3, 1), date(2026, 3, 16))])
    assert month is not None
    assert month.days_measured == 15 and month.days_in_period == 15
    assert month.production_kwh == Decimal("150.0")
    assert month.self_consumed_kwh == Decimal("45.0")
    assert month.export_kwh == Decimal("105.0")
    assert month.import_kwh == Decimal("75.0")
    assert month.consumption_kwh == Decimal("120.0")
    assert month.self_consumption_rate == Decimal("0.3")
    assert month.self_sufficiency == Decimal("0.375")
    # a site without meter days gives no figures, not zeros
    assert (
        month_self_consumption(influx, [SiteDays("S2", date(2026, 3, 1), date(2026, 4, 1))]) is None
    )


def test_statement_shows_the_box_for_the_contracts_days(
    issued: tuple[Engine, str, str], influx: InfluxClient, tmp_path: Path
) -> None:
    engine, march, _ = issued
    _write_march_days(influx, "S1")
    with Session(engine) as session:
        m1 = load_statement(session, march, "M1", influx=influx)
        m2 = load_statement(session, march, "M2", influx=influx)
        m3 = load_statement(session, march, "M3", influx=influx)
        without = load_statement(session, march, "M1")
    assert m1.self_consumption is not None and m2.self_consumption is not None
    assert (m1.self_consumption.days_measured, m2.self_consumption.days_measured) == (15, 16)
    assert m2.self_consumption.production_kwh == Decimal("160.0")
    assert m3.self_consumption is None and without.self_consumption is None

    dutch = " ".join(render_html(m1).split())
    assert "Eigen verbruik van uw zonnestroom" in dutch
    assert "150,0" in dutch and "45,0" in dutch and "105,0" in dutch and "30,0%" in dutch
    assert "over 15 van de 15 dagen" in dutch
    assert "niet in rekening gebracht" in dutch
    english = " ".join(render_html(m2).split())  # M2's language is English
    assert "Your own use of your solar power" in english and "160.0" in english
    assert "Eigen verbruik" not in render_html(m3) and "Eigen verbruik" not in render_html(without)
    # the box is information: the amounts are the same with and without it
    assert m1.total_incl_vat_eur == without.total_incl_vat_eur
    text = pdf_text(render_pdf(m1), tmp_path)
    assert "Eigen verbruik van uw zonnestroom" in text and "150,0" in text


def test_render_run_without_influxdb_renders_without_the_box(
    issued: tuple[Engine, str, str], tmp_path: Path
) -> None:
    engine, march, _ = issued
    nowhere = InfluxClient(url="http://127.0.0.1:9", database="none", retries=0)
    with Session(engine) as session:
        done = render_run(session, march, tmp_path, members=["M1"], influx=nowhere)
    assert len(done) == 1
    assert "Eigen verbruik" not in done[0].html_path.read_text(encoding="utf-8")
