"""The Modbus plumbing of the gateway: buses, read planning, register codec, values, errors."""
