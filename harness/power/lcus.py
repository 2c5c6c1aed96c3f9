"""LCUS-1/2/4/8 USB relay modules: a CH340 serial port at 9600 8N1 and 4-byte frames, write only.

Frame: `A0 <channel> <op> <sum>`, channel from 1, op 1 = energise, 0 = release,
sum = (0xA0 + channel + op) & 0xFF. The modules never answer, so nothing here can tell whether a
frame was obeyed; `get()` reports what was last commanded, not what the contact is doing.

The port is opened for each command and closed again. The relay latches by itself, so nothing
is gained by holding the port, and a held port would lock out every other harness run sharing
the module (one 4-channel module often powers four boards) and go stale when the module
re-enumerates on a hub reset. Within one process, frames to one module are serialised and
spaced through a shared per-port record, whichever `LcusRelay` (channel) sends them.

The bench section is `power: {kind: lcus, port: ..., channel: N, invert: false, off_time_s: 2}`
(`LcusSection`); `BACKEND` registers it as the `lcus` kind (pyproject.toml, `talos_harness.power`).
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import serial
from pydantic import Field, field_validator, model_validator

from harness.console.port import is_device_path, open_port
from harness.errors import BenchError, ConfigError
from harness.power.base import PowerBackend, PowerContext, PowerSection
from harness.transports.udev import resolve_device_node

BAUD = 9600
FRAME_START = 0xA0
CHANNELS = range(1, 9)  # LCUS-8 is the largest; a channel the module lacks is silently ignored by it
# tcdrain on a CH340 returns once the bytes reach the adapter, not the wire: 4 bytes take 4 ms at
# 9600 baud, and a relay coil needs 5-10 ms more to pull in. `set()` must not return before that.
SETTLE_S = 0.02
# Another harness run holding the module's port (exclusive lock) only does so for one frame.
BUSY_RETRY_S = 1.0
WHERE = "the bench's power.port"


def frame(channel: int, op: int) -> bytes:
    return bytes((FRAME_START, channel, op, (FRAME_START + channel + op) & 0xFF))


@dataclass
class FramePacing:
    """One module's port as seen by this process: a lock, and when its last frame left. The LCTech HID
    relays take the same frames at the same pace, so they share this."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    last_frame: float = -math.inf


_lines: dict[str, FramePacing] = {}
_lines_lock = threading.Lock()


def frame_pacing(url: str) -> FramePacing:
    # /dev/serial/by-id/... and /dev/ttyUSB0 can name the same module; the gap must hold across both.
    key = os.path.realpath(url) if is_device_path(url) else url
    with _lines_lock:
        return _lines.setdefault(key, FramePacing())


class LcusRelay:
    """One channel of an LCUS relay module, driven through a pyserial URL or device path.

    `invert` is for active-low modules and for boards wired through the normally-closed contact:
    on then sends op 0. `frame_gap_s` is the least time between two frames on the module's port;
    the modules drop frames that come faster.
    """

    reads_back = False  # the module never answers: get() is what was commanded, not what the relay did

    def __init__(self, url: str, channel: int = 1, *, invert: bool = False, frame_gap_s: float = 0.05,
                 locate: Callable[[], str] | None = None) -> None:
        """`url` names the module in messages and paces its frames; `locate`, when given, finds its node
        again for every frame (a udev identity: the node of a replugged module changes)."""
        if isinstance(channel, bool) or not isinstance(channel, int) or channel not in CHANNELS:
            raise ConfigError(
                f"LCUS relay {url}: power.channel must be 1..8 (the module's relays are numbered from 1, "
                f"as printed on the board), got {channel!r}")
        if frame_gap_s < 0:
            raise ConfigError(f"LCUS relay {url}: frame gap must not be negative, got {frame_gap_s}")
        self.url = url
        self.channel = channel
        self.invert = invert
        self.frame_gap_s = frame_gap_s
        self.description = f"LCUS relay {url} channel {channel}" + (" (inverted)" if invert else "")
        self._line = frame_pacing(url)
        self._locate = locate or (lambda: url)
        self._commanded: bool | None = None

    def set(self, on: bool) -> None:
        op = int(on != self.invert)
        with self._line.lock:
            wait = self._line.last_frame + self.frame_gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            port = self._open()
            try:
                self._send(port, frame(self.channel, op))
            finally:
                port.close()
            time.sleep(SETTLE_S)
        self._commanded = on

    def get(self) -> bool | None:
        """The state last commanded through this object (None before the first `set`).

        Not a read-back: LCUS modules do not answer, so an unplugged module or a missing channel
        looks exactly like a working one here.
        """
        return self._commanded

    def _open(self) -> serial.SerialBase:
        deadline = time.monotonic() + BUSY_RETRY_S
        while True:
            try:
                return open_port(self._locate(), BAUD, where=WHERE)
            except BenchError as exc:
                busy = getattr(exc.__cause__, "errno", None) in (errno.EAGAIN, errno.EBUSY)
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(0.02)

    def _send(self, port: serial.SerialBase, data: bytes) -> None:
        try:
            written = port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            # Part of a frame may have gone out; what the relay did is now unknown.
            self._commanded = None
            raise BenchError(
                f"writing to the LCUS relay on {self.url} failed ({exc}) ({WHERE}): check that the module is "
                "still plugged in (dmesg shows a CH340 disconnect) and that its USB cable and hub port are "
                "sound") from exc
        finally:
            self._line.last_frame = time.monotonic()
        if written is not None and written != len(data):
            self._commanded = None
            raise BenchError(
                f"the LCUS relay on {self.url} took {written} of {len(data)} bytes of a frame ({WHERE}): "
                "the module or its USB link is failing; replug it and check dmesg")


class LcusSection(PowerSection):
    """A bench's LCUS relay: the module's serial device and the channel the board's supply goes through.

    Wire the supply through the normally-open contact, so an unpowered module means the board is
    off; `invert` is for active-low modules and normally-closed wiring.
    """

    kind: Literal["lcus"]
    port: str | None = Field(default=None, min_length=1,
                             description="the module's serial device, e.g. /dev/serial/by-path/...")
    udev: dict[str, str] | None = Field(default=None, description="or its udev identity; CH340 modules have no "
                                                                  "serial number, so name it by ID_PATH")
    channel: int = Field(default=1, strict=True, description="relay number as printed on the module, from 1")
    invert: bool = False

    example: ClassVar[str | None] = "{kind: lcus, port: ..., channel: N}"

    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> LcusSection:
        if (self.port is None) == (self.udev is None):
            raise ValueError("give exactly one of 'port' (a device path) or 'udev' (e.g. {ID_PATH: ...})")
        return self

    @field_validator("channel")
    @classmethod
    def _channel_on_the_module(cls, channel: int) -> int:
        """Refused in the file, with the reason, rather than by the driver at power-on."""
        if channel not in CHANNELS:
            raise ValueError(f"channel {channel} does not exist on an LCUS module; its relays are numbered "
                             f"{CHANNELS.start}..{CHANNELS.stop - 1}, as printed on the board")
        return channel


def build(section: LcusSection, context: PowerContext) -> LcusRelay:
    """One channel of the module; the port is opened (and a udev identity resolved) per frame, so
    nothing is touched here."""
    if section.udev is None:
        assert section.port is not None  # the section's validator asks for one of the two
        return LcusRelay(section.port, section.channel, invert=section.invert)
    identity = section.udev
    return LcusRelay(f"udev {identity}", section.channel, invert=section.invert,
                     locate=lambda: resolve_device_node("tty", udev=identity, where="the bench's power.udev"))


BACKEND = PowerBackend(section=LcusSection, build=build)
