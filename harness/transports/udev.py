"""Find a device node by its udev identity, never by a /dev/ttyUSBn or /dev/hidrawN that changes.

A USB UART powered by the board disappears at power-off and comes back as another ttyUSBn, and a
hidraw number depends on the order things were plugged in; the bench names a device by properties
instead (`ID_PATH` for the USB port, `ID_SERIAL_SHORT` when the device has a serial number; CH340s
have none, so two of them collide by vendor and model). The console calls the locator again each
time it reopens the port; relay backends resolve their node on every command for the same reason.

A device's identity is its own udev properties and, for a USB device, those of the USB device it
belongs to (a hidraw node's vendor and serial live on the `usb_device` two parents up, not on the
node itself). Where the udev database lacks them (no rule imports `usb_id` for hidraw, or a host
without udevd), `ID_VENDOR_ID`, `ID_MODEL_ID` and `ID_SERIAL_SHORT` come from that USB device's
sysfs attributes and `ID_PATH` is derived the way udev's `path_id` builds it, so a bench file
written from `udevadm info` on one host still matches on another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyudev

from harness.errors import BenchError, ConfigError

# Keys whose values are hex ids: `16C0`, `0x16c0` and `16c0` name the same vendor.
HEX_ID_KEYS = frozenset({"ID_VENDOR_ID", "ID_MODEL_ID"})
# The usb_device sysfs attribute behind each identity key, for when udev did not record the property.
USB_ATTRIBUTES = {"ID_VENDOR_ID": "idVendor", "ID_MODEL_ID": "idProduct", "ID_SERIAL_SHORT": "serial"}
IDENTITY_HINT = ("see `udevadm info -q property -n /dev/ttyUSB0` (or /dev/hidrawN); ID_PATH names the USB "
                 "port, ID_VENDOR_ID/ID_MODEL_ID the kind of device, ID_SERIAL_SHORT one device")


def _own_usb_chain(device: Any) -> Iterator[Any]:
    """The device, then its parents up to and including the USB device it belongs to.

    Not beyond: a hub or root hub above has its own serial and path, and matching against those
    would make every device behind one hub look alike.
    """
    node = device
    chain = []
    while node is not None:
        chain.append(node)
        if node.subsystem == "usb" and node.device_type == "usb_device":
            yield from chain
            return
        node = node.parent
    yield device  # not a USB device: its own properties are its identity


def _usb_device(device: Any) -> Any | None:
    last = None
    for node in _own_usb_chain(device):
        last = node
    return last if last is not None and last.subsystem == "usb" and last.device_type == "usb_device" else None


def usb_path_id(device: Any) -> str | None:
    """The `ID_PATH` udev's path_id builtin gives a USB-attached device, or None for a device not on USB.

    path_id prepends one element per bus on the way up: `usb-0:<ports>:<config>.<interface>` from
    the nearest USB interface (or device), then `pci-<address>` or `platform-<name>` from the host
    controller, each bus counted once: e.g. `pci-0000:00:14.0-usb-0:3:1.0`, or on an SBC
    `platform-xhci-hcd.0.auto-usb-0:1.2:1.0`.
    """
    parts: list[str] = []
    seen: set[str] = set()
    node = device
    while node is not None:
        subsystem = node.subsystem
        if subsystem in ("usb", "pci", "platform") and subsystem not in seen:
            seen.add(subsystem)
            if subsystem == "usb":
                _, dash, ports = node.sys_name.partition("-")
                if not dash:
                    return None  # a root hub (usb1): nothing below it to name
                parts.insert(0, f"usb-0:{ports}")
            else:
                parts.insert(0, f"{subsystem}-{node.sys_name}")
        node = node.parent
    return "-".join(parts) if "usb" in seen else None


def identity_value(device: Any, key: str) -> str | None:
    """The value of udev property `key` for `device` as a bench file means it (see the module docstring)."""
    if key == "ID_PATH":
        # A device's own position: never inherited from a parent, whose path names a different thing.
        own = device.properties.get(key)
        return own if own is not None else usb_path_id(device)
    for node in _own_usb_chain(device):
        value = node.properties.get(key)
        if value is not None:
            return str(value)
    usb = _usb_device(device)
    if usb is not None and key in USB_ATTRIBUTES:
        raw = usb.attributes.get(USB_ATTRIBUTES[key])
        if raw is not None:
            return raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else str(raw).strip()
    return None


def _normal(key: str, value: str) -> str:
    if key in HEX_ID_KEYS:
        value = value.strip().lower()
        return value.removeprefix("0x").rjust(4, "0")
    return value


def identity_matches(device: Any, properties: Mapping[str, str]) -> bool:
    """True when `device` has every key with the given value (hex ids compared as numbers would be)."""
    for key, wanted in properties.items():
        value = identity_value(device, key)
        if value is None or _normal(key, value) != _normal(key, str(wanted)):
            return False
    return True


def describe_identity(device: Any) -> str:
    """`/dev/hidraw3 (ID_VENDOR_ID=16c0 ID_MODEL_ID=05df ID_PATH=...)`: what a bench could name it by."""
    keys = ("ID_VENDOR_ID", "ID_MODEL_ID", "ID_SERIAL_SHORT", "ID_PATH")
    found = [f"{key}={value}" for key in keys if (value := identity_value(device, key)) is not None]
    return f"{device.device_node} ({' '.join(found) or 'no USB identity'})"


def _devices(subsystem: str, properties: Mapping[str, str], context: Any | None) -> list[Any]:
    found = [device for device in (context or pyudev.Context()).list_devices(subsystem=subsystem)
             if device.device_node and identity_matches(device, properties)]
    return sorted(found, key=lambda device: device.device_node)


def find_devices(subsystem: str, properties: Mapping[str, str], context: Any | None = None) -> list[str]:
    """Device nodes of `subsystem` (`tty`, `hidraw`) whose identity has every given key and value."""
    return [device.device_node for device in _devices(subsystem, properties, context)]


def find_serial_devices(properties: Mapping[str, str], context: pyudev.Context | None = None) -> list[str]:
    """Device nodes of tty devices whose udev identity includes every given key and value."""
    return find_devices("tty", properties, context)


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


def resolve_device_node(subsystem: str, *, device: str | None = None, udev: Mapping[str, str] | None = None,
                        where: str, context: Any | None = None) -> str:
    """The node a bench section's `device` (a path, used as given) or `udev` (an identity) names now.

    Called for each command rather than once, because the node of a replugged device changes.
    `where` names the section's keys in messages (e.g. "the bench's power.udev"). Raises
    BenchError when no device or several devices of `subsystem` match: switching "the first
    match" could switch another board's relay.
    """
    if (device is None) == (udev is None):
        raise ConfigError(f"{where}: give exactly one of a device path or udev properties")
    if device is not None:
        return device
    wanted = dict(udev or {})
    found = _devices(subsystem, wanted, context)
    if len(found) == 1:
        return str(found[0].device_node)
    if not found:
        present = [describe_identity(d) for d in _devices(subsystem, {}, context)]
        listing = "; ".join(present[:6]) + (", ..." if len(present) > 6 else "") if present else "none"
        raise BenchError(f"{where} {wanted}: no {subsystem} device is present with that identity "
                         f"({subsystem} devices present: {listing}); check that it is plugged in, or {IDENTITY_HINT}")
    raise BenchError(f"{where} {wanted} matches {len(found)} {subsystem} devices "
                     f"({'; '.join(describe_identity(d) for d in found[:4])}{', ...' if len(found) > 4 else ''}): "
                     f"add a property that tells them apart; {IDENTITY_HINT}")
