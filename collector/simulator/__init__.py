"""The fleet simulator: a believable Dieze-Oost of rooftop PV systems with known faults.

See ``docs/simulator.md``. The physics is vectorised over sites and time steps; readings
leave as wire-format batches (files or MQTT) or as registers of simulated Modbus devices.
"""
