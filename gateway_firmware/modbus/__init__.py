"""The Modbus side of the gateway: buses, read planning, device readers."""
