"""LCTech HID relay modules (5131:2007): the LCUS 4-byte frame sent as a HID output report, write only.

The module runs the LCUS frame parser behind a HID interface instead of a CH340: the frame
`A0 <channel> <op> <sum>` (harness.power.lcus.frame) goes out as an output report with report
number 0, i.e. a plain write of `00 A0 ch op sum` to /dev/hidrawN. The module has no input or
feature report to read its state from, so `get()` is None: PowerControl then reports the state
as unknown instead of echoing what was last asked for.

The node is found (by udev identity when the bench gives one) and opened for each command, as
for the other relays, and frames to one module are spaced like LCUS frames: the same firmware
family drops frames closer than ~50 ms (not measured on this module; the gap costs nothing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from harness.power.base import PowerBackend, PowerContext, PowerSwitch, maybe_inverted
from harness.power.lcus import frame, frame_pacing
from harness.power.usbrelay_hid import HidNode, HidRelaySection, Opener
from harness.transports.hidraw import HidrawDevice

VENDOR, PRODUCT = 0x5131, 0x2007
REPORT_ID = 0
FRAME_GAP_S = 0.05
SETTLE_S = 0.02  # the write returns when the frame left the host; the coil needs a few ms more


def output_report(channel: int, on: bool) -> bytes:
    """What is written to the node: report number 0, then the LCUS frame."""
    return bytes((REPORT_ID,)) + frame(channel, int(on))


class LctechHidRelay:
    """One relay of an LCTech HID module. Write only: `get()` is always None."""

    reads_back = False  # PowerControl: no read-back to check, and the status is "unknown"

    def __init__(self, *, device: str | None = None, udev: Mapping[str, str] | None = None, channel: int = 1,
                 opener: Opener = HidrawDevice, context: Any | None = None, frame_gap_s: float = FRAME_GAP_S) -> None:
        self.channel = channel
        self.frame_gap_s = frame_gap_s
        where = device if device is not None else f"udev {dict(udev or {})}"
        self.description = f"LCTech HID relay {where} channel {channel}"
        self.node = HidNode(device=device, udev=udev, description=self.description, usb_id=(VENDOR, PRODUCT),
                            opener=opener, context=context)

    def set(self, on: bool) -> None:
        with self.node.open() as hid:
            # /dev/hidraw3 and a udev identity can name the same module: the gap must hold across both.
            spacing = frame_pacing(hid.path)
            with spacing.lock:
                wait = spacing.last_frame + self.frame_gap_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    hid.write(output_report(self.channel, on))
                finally:
                    spacing.last_frame = time.monotonic()
        time.sleep(SETTLE_S)

    def get(self) -> bool | None:
        """None: the module has no report to read its relays from, so nothing here can tell."""
        return None


class LctechHidSection(HidRelaySection):
    """A bench's LCTech HID relay module: which module (path or udev identity) and which relay.

    Wire the supply through the normally-open contact, so an unpowered module means the board is off.
    """

    kind: Literal["lctech-hid"]

    default_udev: ClassVar[dict[str, str]] = {"ID_VENDOR_ID": f"{VENDOR:04x}", "ID_MODEL_ID": f"{PRODUCT:04x}"}
    example: ClassVar[str | None] = "{kind: lctech-hid, udev: {ID_PATH: ...}, channel: N}"


def build(section: LctechHidSection, context: PowerContext) -> PowerSwitch:
    """One relay of the module; the node is found and opened per command, so nothing is touched here."""
    relay = LctechHidRelay(device=section.device, udev=section.identity(), channel=section.channel)
    return maybe_inverted(relay, section.invert)


BACKEND = PowerBackend(section=LctechHidSection, build=build)
