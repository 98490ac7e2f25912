"""Zonnewijk server side: collector, settlement, fault detection, portal."""

__version__ = "0.1.0"
