"""``zonnewijk demo``: the whole data path on one machine (simulated inverters to InfluxDB)."""
