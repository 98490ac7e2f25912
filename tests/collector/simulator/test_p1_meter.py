"""The simulated P1 port: its telegrams are valid DSMR 5.0 for dsmr-parser and the gateway."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from collector.devtools.pty import PtyPair
from collector.simulator.p1_meter import MeterValues, P1Emulator, dsmr5_telegram
from gateway_firmware.p1.port import P1Port
from gateway_firmware.p1.telegram import decode_telegram

SUMMER = datetime(2027, 6, 21, 10, 0, 5, tzinfo=UTC)
WINTER = datetime(2027, 1, 4, 11, 0, 0, tzinfo=UTC)


def values(ts: datetime, **kw: float) -> MeterValues:
    return MeterValues(
        ts=ts,
        import_t1_wh=kw.get("i1", 1_234_567.0),
        import_t2_wh=kw.get("i2", 2_345_678.0),
        export_t1_wh=kw.get("e1", 345_678.0),
        export_t2_wh=kw.get("e2", 456_789.0),
        import_power_w=kw.get("ip", 0.0),
        export_power_w=kw.get("ep", 2310.0),
        gas_m3=3102.448,
    )


def test_telegram_checks_out_with_dsmr_parser_and_the_gateway() -> None:
    text = dsmr5_telegram(values(SUMMER)).decode()
    # dsmr-parser's own parser, CRC checked: the meter is a DSMR 5 meter to it
    parsed = TelegramParser(telegram_specifications.V5).parse(text)
    assert str(parsed.ELECTRICITY_USED_TARIFF_1.value) == "1234.567"
    assert parsed.P1_MESSAGE_TIMESTAMP.value == SUMMER  # 120621120005S: summer time, UTC+2
    assert "(270621120005S)" in text
    t = decode_telegram(text)
    assert (t.import_energy_wh, t.export_energy_wh) == (3_580_245.0, 802_467.0)
    assert (t.import_power_w, t.export_power_w, t.tariff) == (0.0, 2310.0, 2)
    assert t.gas is not None and t.gas.gas_m3 == 3102.448
    assert "(270104120000W)" in dsmr5_telegram(values(WINTER)).decode()  # winter time, UTC+1


def test_emulator_over_a_pty_at_dsmr_5_speed() -> None:
    with PtyPair() as pair:
        port = P1Port(pair.gateway_end)
        port.start()
        try:
            with P1Emulator(pair.device_end, lambda now: values(now), period_s=0.1) as meter:
                deadline = time.monotonic() + 10
                got: list[str] = []
                while len(got) < 5 and time.monotonic() < deadline:
                    got += [text for _, text in port.drain()]
                    time.sleep(0.05)
                assert meter.written >= 5
        finally:
            port.stop()
    assert len(got) >= 5
    assert all(decode_telegram(text).protocol == "DSMR 5.0" for text in got)
