"""Find a serial device by its udev properties, never by a /dev/ttyUSBn that changes.

A USB UART powered by the board disappears at power-off and comes back as another ttyUSBn; the
bench names it by properties instead (`ID_PATH` for the USB port, `ID_SERIAL_SHORT` when the
adapter has a serial number; CH340s have none, so two of them collide by vendor and model).
The console calls the locator again each time it reopens the port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyudev

from harness.errors import BenchError


def find_serial_devices(properties: Mapping[str, str], context: pyudev.Context | None = None) -> list[str]:
    """Device nodes of tty devices whose udev properties include every given key and value."""
    found = []
    for device in (context or pyudev.Context()).list_devices(subsystem="tty"):
        if device.device_node and all(device.properties.get(k) == v for k, v in properties.items()):
            found.append(device.device_node)
    return sorted(found)


def serial_locator(properties: Mapping[str, str]) -> Callable[[], str | None]:
    """A console URL source: the one matching device now, None while it is absent."""
    wanted = dict(properties)

    def locate() -> str | None:
        nodes = find_serial_devices(wanted)
        if len(nodes) > 1:
            raise BenchError(
                f"serial.udev {wanted} matches {len(nodes)} devices ({', '.join(nodes[:4])}, ...): "
                "add a property that tells them apart (ID_PATH names the USB port; "
                "see `udevadm info -q property -n /dev/ttyUSB0`)")
        return nodes[0] if nodes else None

    return locate
