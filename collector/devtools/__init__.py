"""Private Mosquitto and InfluxDB processes on free ports, for tests, benches and the demo."""
