"""The gateway configuration file: the example is valid, mistakes name their field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_firmware.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gateway.example.yaml"


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "gateway_id": "gw-1",
        "mqtt": {"host": "127.0.0.1"},
        "devices": [{"device_id": "inv-1", "host": "127.0.0.1"}],
    }
    data.update(overrides)
    return data


def test_example_config_is_valid_once_its_files_exist(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    # the example points at /etc/zonnewijk/...; put those files somewhere real
    (tmp_path / "ca.crt").write_text("ca")
    (tmp_path / "pw").write_text("secret\n")
    data["mqtt"]["tls"]["ca_file"] = str(tmp_path / "ca.crt")
    data["mqtt"]["password_file"] = str(tmp_path / "pw")
    config = parse_config(data)
    assert config.gateway_id == "gw-0001"
    assert config.mqtt.effective_port == 8883
    assert config.mqtt.password_value() == "secret"
    assert config.spool.max_readings >= 518_400  # 30 days at 10 s for two inverters
    assert config.devices[0].unit == 126
    assert config.client_id == "zonnewijk-gw-gw-0001"


def test_defaults() -> None:
    config = parse_config(minimal())
    assert config.mqtt.effective_port == 1883
    assert config.mqtt.protocol == "5"
    assert config.devices[0].interval_s == 10.0
    assert config.devices[0].profile == "sunspec"
    assert config.spool.max_readings >= 518_400


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gateway_id": "gw 1"}, "gateway_id: String should match pattern"),
        ({"mqtt": {"host": "h", "port": 70000}}, "mqtt.port: Input should be less than"),
        ({"mqtt": {"host": "h", "tls": {"ca_file": "/nonexistent/ca.crt"}}}, "mqtt.tls: ca_file"),
        ({"mqtt": {"host": "h", "password": "x"}}, "mqtt: a password needs a username"),
        ({"mqtt": {"host": "h", "hots": "typo"}}, "mqtt.hots: Extra inputs are not permitted"),
        ({"devices": []}, "devices: Tuple should have at least 1 item"),
        ({"devices": [{"device_id": "a"}]}, "devices.0: give exactly one of host"),
        (
            {"devices": [{"device_id": "a", "host": "h", "interval_s": 0.1}]},
            "devices.0.interval_s: Input should be greater than or equal to 1",
        ),
        (
            {"devices": [{"device_id": "a", "host": "h"}, {"device_id": "a", "host": "h"}]},
            "devices: Value error, device_id 'a' appears twice",
        ),
        ({"spool": {"replay_batch_size": 5000}}, "spool.replay_batch_size"),
        (
            {"mqtt": {"host": "h", "username": "u", "password": "CHANGE-ME"}},
            "mqtt.password: still the example placeholder",
        ),
    ],
)
def test_mistakes_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(minimal(**change))
    assert message.replace("Value error, ", "") in str(info.value)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway_id: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)


def test_systemd_unit_runs_the_service_under_the_watchdog() -> None:
    import configparser
    import shlex

    from gateway_firmware.cli import build_parser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "config" / "systemd" / "zonnewijk-gateway.service")
    service = unit["Service"]
    assert service["Type"] == "notify"  # READY=1 and WATCHDOG=1 from the main loop
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) >= 60
    assert service["StateDirectory"] == "zonnewijk-gateway"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/zonnewijk-gateway")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.config == "/etc/zonnewijk/gateway.yaml"
    # the example config's spool lives in the unit's state directory
    example = yaml.safe_load(EXAMPLE.read_text())
    assert example["spool"]["path"].startswith("/var/lib/zonnewijk-gateway/")
