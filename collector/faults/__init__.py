"""Fault detection and alerts (issue 8); ``docs/faults.md`` describes the whole.

- detectors, pure functions over numpy arrays: :mod:`.offline`, :mod:`.production`,
  :mod:`.fault_state`, :mod:`.peers`, :mod:`.strings`, :mod:`.integrity`, with the
  persistence helpers in :mod:`.temporal` and the data types in :mod:`.model`;
- :mod:`.pipeline` runs them all, :mod:`.episodes` turns detections into findings;
- :mod:`.alerts`: the alert lifecycle and the Python API (list, get, history, acknowledge);
- :mod:`.notify`: MQTT, webhook, e-mail and InfluxDB channels, rate-limited;
- :mod:`.influx_source`: the detectors' inputs from InfluxDB and the registry;
- :mod:`.scheduling`: runs once per slot across instances, APScheduler wiring;
- :mod:`.evaluation`: scoring against the simulator's ground truth (``bench/faults.py``);
- :mod:`.commands`: ``zonnewijk faults run-once|serve|list|ack``.
"""
