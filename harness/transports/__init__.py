"""Transports: how the harness reaches a device (udev lookup; pyserial URLs live with the console)."""
