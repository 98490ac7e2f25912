"""Enrolment of new gateways: one-time codes, and credentials and configuration for the Pi."""
