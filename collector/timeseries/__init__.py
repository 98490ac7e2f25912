"""The time-series store: the InfluxDB v1 HTTP client, how readings are stored, the schema."""
