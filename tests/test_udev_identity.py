"""Finding a tty or hidraw node by its udev identity: this machine's real sysfs, and a USB layout copied from one.

The real-sysfs tests use whatever tty devices this machine has (it has no USB devices and no
hidraw nodes: a container without udevd). What needs USB (the identity a hidraw node inherits from
its USB device, sysfs attributes when udev recorded no property, ID_PATH as path_id builds it) is
tested against stand-in devices laid out exactly as sysfs lays out a USB HID relay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import pyudev

from harness.errors import BenchError, ConfigError
from harness.transports.udev import (
    describe_identity,
    find_devices,
    find_serial_devices,
    identity_value,
    resolve_device_node,
    usb_path_id,
)


def _real_ttys() -> list[pyudev.Device]:
    return [d for d in pyudev.Context().list_devices(subsystem="tty") if d.device_node]


# -- this machine's sysfs ------------------------------------------------------------------------
def test_a_tty_is_found_by_its_properties_and_resolved_to_its_node() -> None:
    device = _real_ttys()[0]
    node = device.device_node
    assert find_devices("tty", {"DEVPATH": device.properties["DEVPATH"]}) == [node]
    assert find_serial_devices({"DEVNAME": node}) == [node]
    assert resolve_device_node("tty", udev={"DEVNAME": node, "SUBSYSTEM": "tty"}, where="the bench's power") == node


def test_a_plain_path_is_used_as_given() -> None:
    assert resolve_device_node("hidraw", device="/dev/hidraw7", where="the bench's power") == "/dev/hidraw7"


def test_an_identity_nothing_has_is_a_bench_error_naming_it_and_listing_what_is_there() -> None:
    wanted = {"ID_PATH": "pci-0000:99:99.9-usb-0:9:1.0"}
    with pytest.raises(BenchError) as caught:
        resolve_device_node("hidraw", udev=wanted, where="the bench's power")
    message = str(caught.value)
    assert message.startswith(f"the bench's power {wanted}: no hidraw device is present with that identity")
    assert "hidraw devices present: " in message and "udevadm info" in message
    with pytest.raises(BenchError, match=r"no tty device .*tty devices present: /dev/"):
        resolve_device_node("tty", udev=wanted, where="the bench's power")


def test_an_identity_several_devices_have_is_refused_naming_them() -> None:
    count = len(_real_ttys())
    assert count > 1, "this machine's sysfs has several ttys"
    with pytest.raises(BenchError, match=rf"matches {count} tty devices \(/dev/.*add a property that tells them apart"):
        resolve_device_node("tty", udev={"SUBSYSTEM": "tty"}, where="the bench's power")


@pytest.mark.parametrize(("device", "udev"), [(None, None), ("/dev/hidraw1", {"ID_PATH": "x"})])
def test_exactly_one_of_path_and_identity(device: str | None, udev: dict[str, str] | None) -> None:
    with pytest.raises(ConfigError, match="exactly one of a device path or udev properties"):
        resolve_device_node("hidraw", device=device, udev=udev, where="the bench's power")


def test_a_device_not_on_usb_does_not_inherit_its_parents_properties() -> None:
    """Only a USB device's own chain is its identity: a serial port's parent driver is not."""
    device = next(d for d in _real_ttys()
                  if d.parent is not None and any(k not in d.properties for k in d.parent.properties))
    key = next(k for k in device.parent.properties if k not in device.properties)
    assert identity_value(device, key) is None
    assert device.device_node not in find_devices("tty", {key: device.parent.properties[key]})
    assert usb_path_id(device) is None


# -- a USB HID relay, laid out as sysfs lays it out -------------------------------------------------
@dataclass
class Dev:
    """The part of a pyudev.Device the lookup reads."""

    sys_name: str
    subsystem: str
    parent: Dev | None = None
    device_type: str | None = None
    device_node: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Context:
    devices: list[Dev]

    def list_devices(self, subsystem: str) -> list[Dev]:
        return [d for d in self.devices if d.subsystem == subsystem]


def hid_relay(host: Dev, port: str, node: str, *, serial: bytes | None = None, vendor: bytes = b"16c0",
              product: bytes = b"05df", udev_db: dict[str, str] | None = None) -> Dev:
    """pci/platform host -> root hub usb1 -> usb_device 1-<port> -> interface 1-<port>:1.0 -> hid -> hidraw."""
    root = Dev("usb1", "usb", host, "usb_device", "/dev/bus/usb/001/001",
               attributes={"idVendor": b"1d6b", "idProduct": b"0002", "serial": host.sys_name.encode()})
    attributes = {"idVendor": vendor + b"\n", "idProduct": product + b"\n", "product": b"USBRelay2\n"}
    if serial is not None:
        attributes["serial"] = serial + b"\n"
    usb = Dev(f"1-{port}", "usb", root, "usb_device", f"/dev/bus/usb/001/0{port[-1]}", properties=udev_db or {},
              attributes=attributes)
    interface = Dev(f"1-{port}:1.0", "usb", usb, "usb_interface",
                    properties={"PRODUCT": f"{vendor.decode()}/{product.decode()}/100"})
    hid = Dev(f"0003:{vendor.decode().upper()}:{product.decode().upper()}.0001", "hid", interface,
              properties={"HID_NAME": "www.dcttech.com USBRelay2"})
    return Dev(node.rsplit("/", 1)[1], "hidraw", hid, device_node=node,
               properties={"DEVNAME": node, "SUBSYSTEM": "hidraw"})


PCI = Dev("0000:00:14.0", "pci", Dev("pci0000:00", "", None))
PLATFORM = Dev("xhci-hcd.0.auto", "platform", Dev("fc000000.usb", "platform", Dev("platform", "")))


def test_id_path_is_built_as_udev_path_id_builds_it() -> None:
    assert usb_path_id(hid_relay(PCI, "3", "/dev/hidraw3")) == "pci-0000:00:14.0-usb-0:3:1.0"
    assert usb_path_id(hid_relay(PLATFORM, "1.2", "/dev/hidraw0")) == "platform-xhci-hcd.0.auto-usb-0:1.2:1.0"


def test_a_recorded_id_path_wins_and_is_never_inherited() -> None:
    relay = hid_relay(PCI, "3", "/dev/hidraw3")
    relay.properties["ID_PATH"] = "pci-0000:00:14.0-usb-0:3:1.0-recorded"
    assert identity_value(relay, "ID_PATH") == "pci-0000:00:14.0-usb-0:3:1.0-recorded"
    plain = hid_relay(PCI, "4", "/dev/hidraw4", udev_db={"ID_PATH": "pci-0000:00:14.0-usb-0:4"})
    assert identity_value(plain, "ID_PATH") == "pci-0000:00:14.0-usb-0:4:1.0", "the USB device's path is not its own"


def test_vendor_product_and_serial_come_from_the_usb_device() -> None:
    relay = hid_relay(PCI, "3", "/dev/hidraw3", serial=b"A1B2")
    assert [identity_value(relay, k) for k in ("ID_VENDOR_ID", "ID_MODEL_ID", "ID_SERIAL_SHORT")] == [
        "16c0", "05df", "A1B2"]
    recorded = hid_relay(PCI, "3", "/dev/hidraw3", serial=b"A1B2", udev_db={"ID_SERIAL_SHORT": "from-udev"})
    assert identity_value(recorded, "ID_SERIAL_SHORT") == "from-udev"


def test_a_device_without_a_serial_does_not_take_its_hubs() -> None:
    """CH340s and the relays have no serial; the root hub's `serial` attribute must not stand in for one."""
    relay = hid_relay(PCI, "3", "/dev/hidraw3")
    assert identity_value(relay, "ID_SERIAL_SHORT") is None


@pytest.mark.parametrize("vendor", ["16c0", "16C0", "0x16c0"])
def test_hex_ids_match_however_they_are_written(vendor: str) -> None:
    context = Context([hid_relay(PCI, "3", "/dev/hidraw3")])
    assert find_devices("hidraw", {"ID_VENDOR_ID": vendor, "ID_MODEL_ID": "5df"}, context) == ["/dev/hidraw3"]


def test_two_identical_relays_are_told_apart_by_id_path_only() -> None:
    context = Context([hid_relay(PCI, "3", "/dev/hidraw3"), hid_relay(PCI, "4", "/dev/hidraw5"),
                       hid_relay(PCI, "5", "/dev/hidraw6", vendor=b"046d", product=b"c52b")])
    identity = {"ID_VENDOR_ID": "16c0", "ID_MODEL_ID": "05df"}
    with pytest.raises(BenchError) as caught:
        resolve_device_node("hidraw", udev=identity, where="the bench's power", context=context)
    assert "matches 2 hidraw devices" in str(caught.value)
    assert "/dev/hidraw3 (ID_VENDOR_ID=16c0 ID_MODEL_ID=05df ID_PATH=pci-0000:00:14.0-usb-0:3:1.0)" in str(
        caught.value)
    assert resolve_device_node("hidraw", udev={**identity, "ID_PATH": "pci-0000:00:14.0-usb-0:4:1.0"},
                               where="the bench's power", context=context) == "/dev/hidraw5"


def test_nothing_matching_lists_each_present_device_with_its_identity() -> None:
    context = Context([hid_relay(PCI, "3", "/dev/hidraw3", serial=b"X9")])
    with pytest.raises(BenchError) as caught:
        resolve_device_node("hidraw", udev={"ID_SERIAL_SHORT": "X8"}, where="the bench's power", context=context)
    assert describe_identity(context.devices[0]) in str(caught.value)
    assert "ID_SERIAL_SHORT=X9" in str(caught.value)
