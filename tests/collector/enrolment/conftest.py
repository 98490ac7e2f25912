"""The fleet server fixture (``tests/collector/fleet_fixtures.py``)."""

from fleet_fixtures import fleet_server

__all__ = ["fleet_server"]
