"""dcttech "USBRelayN" HID relay boards (16c0:05df, product string USBRelay1/2/4/8), with read-back.

The board is a V-USB firmware that speaks HID feature reports of 8 bytes, report number 0:
`[0xFF, n, 0...]` energises relay n (from 1), `[0xFD, n, 0...]` releases it (0xFE/0xFC are all
on/off, never sent here: one bench owns one channel). A GET feature report answers bytes 0-4 the
board id and byte 7 the bitmask of relays that are on, so `get()` is a real read-back and
PowerControl catches a relay that did not follow. The board forgets its state when it loses USB
power, which is why the rig switches off first thing rather than trusting what it last said.

The kernel's hidraw node is used directly (harness.transports.hidraw): HIDIOCSFEATURE with
`[0, op, n, 0 x 6]` (9 bytes: report number, then the report) and HIDIOCGFEATURE with a 9-byte
buffer whose byte 0 is the report number 0; usbhid skips that byte on the wire and returns 9.

16c0:05df is V-USB's shared id, so the vendor and product id alone do not prove the node is a
relay board: the HID name must also say `USBRelayN`, which gives the channel count. A clone whose
name says otherwise can be driven by giving `channels:` in the section.

Like the LCUS driver, the node is opened for each command and closed again, and found again each
time (by udev identity when the bench gives one), since /dev/hidrawN changes when the board
re-enumerates. `HidRelaySection` holds what both HID relay kinds share; harness.power.lctech_hid
extends it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch, maybe_inverted
from harness.transports.hidraw import HidDevice, HidrawDevice
from harness.transports.udev import resolve_device_node

VENDOR, PRODUCT = 0x16C0, 0x05DF
REPORT_ID = 0
REPORT_LENGTH = 8  # data bytes of the feature report, without the report number
ON, OFF = 0xFF, 0xFD
CHANNELS = range(1, 9)  # byte 7 of the state is an 8-bit mask: USBRelay8 is the largest board
MODULE_SIZES = (1, 2, 4, 8)
BOARD_ID = slice(0, 5)
STATE_BYTE = 7
# The feature report returns once the firmware has driven the coil's transistor; the contact needs
# 5-10 ms more to pull in, and `set()` must not return before the board has power.
SETTLE_S = 0.02
NAME_PATTERN = re.compile(r"USBRelay(\d+)")

Opener = Callable[[str], HidDevice]


def command(op: int, channel: int) -> bytes:
    """The feature report for one relay, as the kernel takes it: report number 0, then 8 bytes."""
    return bytes((REPORT_ID, op, channel)) + bytes(REPORT_LENGTH - 2)


@dataclass(frozen=True)
class BoardState:
    """A GET feature report, decoded: the board's id and which relays are on."""

    board_id: str
    relays_on: int  # bit n-1 set: relay n is on

    def is_on(self, channel: int) -> bool:
        return bool(self.relays_on >> (channel - 1) & 1)


def parse_state(report: bytes, channels: int) -> BoardState:
    """Decode what HIDIOCGFEATURE returned (report number first); ValueError says what is wrong with it.

    A report shorter than the board's 8 bytes, or one that claims relays the board does not have,
    was not written by the relay firmware (or was cut short on the way): guessing from it could
    report a powered board as off.
    """
    if len(report) != 1 + REPORT_LENGTH:
        raise ValueError(f"the state report is {len(report)} bytes ({report.hex(' ') or 'empty'}), not the "
                         f"{1 + REPORT_LENGTH} of report number and 8 data bytes")
    if report[0] != REPORT_ID:
        raise ValueError(f"the state report has report number {report[0]}, not {REPORT_ID} ({report.hex(' ')})")
    data = report[1:]
    relays_on = data[STATE_BYTE]
    if relays_on >> channels:
        raise ValueError(f"the state report says relays {_relays(relays_on)} are on, but the board has "
                         f"{channels} (state byte 0x{relays_on:02x}, report {report.hex(' ')})")
    board_id = data[BOARD_ID].decode("ascii", "backslashreplace").rstrip("\0")
    return BoardState(board_id, relays_on)


def _relays(mask: int) -> str:
    return ",".join(str(bit + 1) for bit in range(8) if mask >> bit & 1)


class HidRelaySection(PowerSection):
    """What the HID relay kinds share: which node (a path, or a udev identity), which relay, inverted or not.

    Give `device` (a path such as /dev/hidraw3, fine for a quick test but renumbered on replug) or
    `udev` (properties as `udevadm info` shows them: ID_PATH for the USB port, ID_SERIAL_SHORT,
    ID_VENDOR_ID/ID_MODEL_ID). With neither, the kind's own vendor and product id are the identity,
    which works while exactly one such module is plugged in.
    """

    device: str | None = Field(default=None, min_length=1, description="the hidraw node, e.g. /dev/hidraw3")
    udev: dict[str, str] | None = Field(default=None, description="udev properties naming the module, e.g. "
                                                                  "{ID_PATH: pci-0000:00:14.0-usb-0:3:1.0}")
    channel: int = Field(default=1, strict=True, description="relay number as printed on the module, from 1")
    invert: bool = Field(default=False, description="for active-low modules and normally-closed wiring")

    default_udev: ClassVar[dict[str, str]] = {}

    @field_validator("udev", mode="before")
    @classmethod
    def _quoted_values(cls, udev: Any) -> Any:
        """YAML reads `ID_VENDOR_ID: 5131` as a number (and 0123 as octal): ask for quotes, never guess."""
        if isinstance(udev, Mapping):
            for key, value in udev.items():
                if not isinstance(value, str):
                    raise ValueError(f"udev property {key} must be a string; YAML read {value!r} as a "
                                     f"{type(value).__name__}: quote it, e.g. {key}: \"{value}\"")
            if not udev:
                raise ValueError("udev needs at least one property, e.g. {ID_PATH: pci-0000:00:14.0-usb-0:3:1.0}")
        return udev

    @field_validator("channel")
    @classmethod
    def _channel_on_a_module(cls, channel: int) -> int:
        if channel not in CHANNELS:
            raise ValueError(f"channel {channel} does not exist on a HID relay module; its relays are numbered "
                             f"{CHANNELS.start}..{CHANNELS.stop - 1}, as printed on the board")
        return channel

    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> HidRelaySection:
        if self.device is not None and self.udev is not None:
            raise ValueError("give one of 'device' (a /dev/hidrawN path) or 'udev' (properties), not both")
        return self

    def identity(self) -> dict[str, str] | None:
        """The udev properties to find the module by, or None when `device` names it."""
        if self.device is not None:
            return None
        return dict(self.udev) if self.udev is not None else dict(self.default_udev)


class HidNode:
    """How a HID relay driver finds and opens its node for one command; errors name the switch."""

    def __init__(self, *, device: str | None, udev: Mapping[str, str] | None, description: str,
                 usb_id: tuple[int, int], opener: Opener = HidrawDevice, context: Any | None = None) -> None:
        self.device, self.udev = device, dict(udev) if udev is not None else None
        self.description = description
        self.usb_id = usb_id
        self.opener = opener
        self.context = context

    @property
    def where(self) -> str:
        return self.device if self.device is not None else f"udev {self.udev}"

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """BenchErrors from below, prefixed with the switch (device and channel): which relay failed."""
        try:
            yield
        except BenchError as exc:
            raise BenchError(f"{self.description}: {exc}") from exc

    @contextlib.contextmanager
    def open(self) -> Iterator[HidDevice]:
        """The node, checked to be the kind of module the bench names, open for one command."""
        with self.errors():
            node = resolve_device_node("hidraw", device=self.device, udev=self.udev, where="the bench's power",
                                       context=self.context)
            hid = self.opener(node)
            try:
                info = hid.info()
                if (info.vendor, info.product) != self.usb_id:
                    vendor, product = self.usb_id
                    raise BenchError(
                        f"{node} is USB device {info.usb_id}, not {vendor:04x}:{product:04x}: hidraw numbers change "
                        "when devices are replugged; name the module by udev properties (ID_PATH)")
                yield hid
            finally:
                hid.close()


class UsbRelayHid:
    """One relay of a dcttech USBRelayN board; `get()` reads the board's state back."""

    reads_back = True  # PowerControl checks every switch against the board's own report

    def __init__(self, *, device: str | None = None, udev: Mapping[str, str] | None = None, channel: int = 1,
                 channels: int | None = None, opener: Opener = HidrawDevice, context: Any | None = None) -> None:
        self.channel = channel
        self.channels = channels
        where = device if device is not None else f"udev {dict(udev or {})}"
        self.description = f"dcttech USB relay {where} channel {channel}"
        self.node = HidNode(device=device, udev=udev, description=self.description, usb_id=(VENDOR, PRODUCT),
                            opener=opener, context=context)
        self.board_id: str | None = None

    def set(self, on: bool) -> None:
        with self.node.open() as hid:
            self._check_channel(hid)
            hid.set_feature(command(ON if on else OFF, self.channel))
        time.sleep(SETTLE_S)

    def get(self) -> bool:
        with self.node.open() as hid:
            count = self._check_channel(hid)
            report = hid.get_feature(REPORT_ID, 1 + REPORT_LENGTH)
            try:
                state = parse_state(report, count)
            except ValueError as exc:
                raise BenchError(f"{hid.path}: {exc}; replug the board, and check that it is a dcttech "
                                 "USBRelay board") from exc
        self.board_id = state.board_id
        return state.is_on(self.channel)

    def _check_channel(self, hid: HidDevice) -> int:
        """The board's relay count (the section's `channels`, else its name); a relay it lacks is refused."""
        count = self.channels
        if count is None:
            name = hid.name()
            found = NAME_PATTERN.search(name)
            if found is None or int(found.group(1)) not in MODULE_SIZES:
                raise BenchError(
                    f"{hid.path} is {VENDOR:04x}:{PRODUCT:04x} but its name {name!r} is not a dcttech "
                    "USBRelay1/2/4/8: that id is shared by every V-USB device; if this is a relay board with "
                    "other firmware, give power.channels")
            count = int(found.group(1))
        if self.channel > count:
            raise BenchError(f"{hid.path} has {count} relay{'s' if count > 1 else ''} (1..{count}), no relay "
                             f"{self.channel}: fix power.channel, or the wiring")
        return count


class UsbRelayHidSection(HidRelaySection):
    """A bench's dcttech USBRelayN board: which board, which relay, and optionally how many it has.

    Wire the supply through the normally-open contact, so an unpowered board means the board is off.
    """

    kind: Literal["usbrelay-hid"]
    channels: Literal[1, 2, 4, 8] | None = Field(
        default=None, description="relays on the board; default: from its name (USBRelayN)")

    default_udev: ClassVar[dict[str, str]] = {"ID_VENDOR_ID": f"{VENDOR:04x}", "ID_MODEL_ID": f"{PRODUCT:04x}"}
    example: ClassVar[str | None] = "{kind: usbrelay-hid, udev: {ID_PATH: ...}, channel: N}"

    @model_validator(mode="after")
    def _channel_on_this_board(self) -> UsbRelayHidSection:
        if self.channels is not None and self.channel > self.channels:
            raise ValueError(f"channel {self.channel} does not exist on a USBRelay{self.channels}; its relays are "
                             f"numbered 1..{self.channels}")
        return self


def build(section: UsbRelayHidSection, context: PowerContext) -> PowerSwitch:
    """One relay of the board; the node is found and opened per command, so nothing is touched here."""
    relay = UsbRelayHid(device=section.device, udev=section.identity(), channel=section.channel,
                        channels=section.channels)
    return maybe_inverted(relay, section.invert)


BACKEND = PowerBackend(section=UsbRelayHidSection, build=build)
