"""Gateways' configuration as the server keeps it: versions, validation, delivery."""
