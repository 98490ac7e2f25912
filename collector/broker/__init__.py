"""The MQTT broker's security: per-gateway credentials and ACLs for Mosquitto."""
