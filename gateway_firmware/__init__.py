"""Zonnewijk gateway firmware: reads inverters over Modbus, publishes readings over MQTT."""

__version__ = "0.1.0"
