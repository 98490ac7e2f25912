"""The collector: readings from MQTT into InfluxDB, acknowledged only once stored."""
