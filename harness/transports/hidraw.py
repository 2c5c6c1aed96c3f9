"""Linux hidraw nodes: HID feature and output reports through /dev/hidrawN, with no library.

USB relay boards speak plain HID, and the kernel's hidraw driver already exposes everything they
need: a write() sends an output report, the HIDIOCSFEATURE/HIDIOCGFEATURE ioctls set and get a
feature report, HIDIOCGRAWINFO and HIDIOCGRAWNAME say which device the node is. hidapi or
libusb would add a dependency (and libusb would detach the kernel driver) for four syscalls.

`HidDevice` is the seam the relay backends are written against; `HidrawDevice` is the real one.
Tests cannot create a real hidraw node on a machine without UHID (/dev/uhid) or CUSE, so they
drive the backends through a double of `HidDevice` and test `HidrawDevice`'s ioctl numbers and
buffers separately.

Reports are passed as the kernel wants them: byte 0 is the report number, 0 for a device without
numbered reports (every relay here), followed by the report's data.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from typing import Protocol

from harness.errors import BenchError

# asm-generic/ioctl.h, the layout of x86, arm, arm64 and riscv (every host a bench runs on);
# powerpc, mips and sparc use 3 direction bits and 13 size bits instead.
IOC_NRBITS, IOC_TYPEBITS, IOC_SIZEBITS, IOC_DIRBITS = 8, 8, 14, 2
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2

RAW_INFO = struct.Struct("=Ihh")  # struct hidraw_devinfo: __u32 bustype; __s16 vendor; __s16 product
NAME_MAX = 256


def ioc(direction: int, kind: str, number: int, size: int) -> int:
    """The kernel's _IOC(dir, type, nr, size): an ioctl request number."""
    if not 0 <= size < 1 << IOC_SIZEBITS:
        raise ValueError(f"ioctl argument size {size} does not fit in {IOC_SIZEBITS} bits")
    return (direction << IOC_DIRSHIFT) | (size << IOC_SIZESHIFT) | (ord(kind) << IOC_TYPESHIFT) | (
        number << IOC_NRSHIFT)


def hidiocsfeature(length: int) -> int:
    """HIDIOCSFEATURE(len) = _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06, len)."""
    return ioc(IOC_WRITE | IOC_READ, "H", 0x06, length)


def hidiocgfeature(length: int) -> int:
    """HIDIOCGFEATURE(len) = _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x07, len)."""
    return ioc(IOC_WRITE | IOC_READ, "H", 0x07, length)


def hidiocgrawname(length: int) -> int:
    """HIDIOCGRAWNAME(len) = _IOC(_IOC_READ, 'H', 0x04, len)."""
    return ioc(IOC_READ, "H", 0x04, length)


HIDIOCGRAWINFO = ioc(IOC_READ, "H", 0x03, RAW_INFO.size)


@dataclass(frozen=True)
class HidInfo:
    """Which device a node is: bus type and the USB vendor and product ids."""

    bustype: int
    vendor: int
    product: int

    @property
    def usb_id(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"


class HidDevice(Protocol):
    """An open HID device as the relay backends use it (the seam their tests replace)."""

    path: str

    def info(self) -> HidInfo: ...

    def name(self) -> str:
        """The HID name: for USB, manufacturer and product strings, e.g. "www.dcttech.com USBRelay2"."""

    def set_feature(self, report: bytes) -> None:
        """Send a feature report (byte 0 the report number)."""

    def get_feature(self, report_id: int, length: int) -> bytes:
        """Get a feature report: `length` includes the report number byte; returns what the kernel returned."""

    def write(self, report: bytes) -> None:
        """Send an output report (byte 0 the report number)."""

    def close(self) -> None: ...


def _problem(path: str, action: str, exc: OSError) -> str:
    why = {
        errno.ENOENT: "is not present: is the device plugged in? hidraw numbers change on replug, so name it by "
                      "udev properties (ID_PATH) rather than /dev/hidrawN",
        errno.EACCES: "is not accessible to this user: add a udev rule giving it to your group, e.g. "
                      'SUBSYSTEM=="hidraw", ATTRS{idVendor}=="<vendor id>", MODE="0660", GROUP="plugdev" '
                      "(or TAG+=\"uaccess\"), then replug",
        errno.ENOTTY: "is not a hidraw device",
        errno.ENODEV: "went away (unplugged, or the USB hub reset): check dmesg",
        errno.EIO: "stopped answering (USB error): check dmesg, the cable and the hub port",
        errno.EPIPE: "refused the report (the device stalled it): is this the device the bench says it is?",
    }.get(exc.errno or 0, f"failed: {exc.strerror or exc}")
    return f"{action} {path}: the device {why}"


class HidrawDevice:
    """A /dev/hidrawN node, opened read-write until `close()`."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise BenchError(_problem(path, "opening", exc)) from exc

    def __enter__(self) -> HidrawDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _ioctl(self, request: int, buffer: bytearray, action: str) -> int:
        try:
            return fcntl.ioctl(self.fd, request, buffer, True)
        except OSError as exc:
            raise BenchError(_problem(self.path, action, exc)) from exc

    def info(self) -> HidInfo:
        buffer = bytearray(RAW_INFO.size)
        self._ioctl(HIDIOCGRAWINFO, buffer, "asking which device is")
        bustype, vendor, product = RAW_INFO.unpack(buffer)
        return HidInfo(bustype, vendor & 0xFFFF, product & 0xFFFF)

    def name(self) -> str:
        buffer = bytearray(NAME_MAX)
        length = self._ioctl(hidiocgrawname(NAME_MAX), buffer, "reading the name of")
        return bytes(buffer[:max(length, 0)]).split(b"\0", 1)[0].decode("utf-8", "replace")

    def set_feature(self, report: bytes) -> None:
        buffer = bytearray(report)
        sent = self._ioctl(hidiocsfeature(len(buffer)), buffer, "sending a feature report to")
        if sent < len(buffer):
            raise BenchError(f"sending a feature report to {self.path}: the device took {sent} of {len(buffer)} "
                             "bytes; it is failing or is not the device the bench says it is")

    def get_feature(self, report_id: int, length: int) -> bytes:
        buffer = bytearray(length)
        buffer[0] = report_id
        got = self._ioctl(hidiocgfeature(length), buffer, "reading a feature report from")
        return bytes(buffer[:max(got, 0)])

    def write(self, report: bytes) -> None:
        try:
            sent = os.write(self.fd, report)
        except OSError as exc:
            raise BenchError(_problem(self.path, "writing an output report to", exc)) from exc
        if sent != len(report):
            raise BenchError(f"writing an output report to {self.path}: the device took {sent} of {len(report)} "
                             "bytes; it is failing or is not the device the bench says it is")
