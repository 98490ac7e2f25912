"""Running the system on one machine: private Mosquitto and InfluxDB, and the demo."""
