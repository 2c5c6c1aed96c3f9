"""An LCUS relay module behind a pty, checked at the byte level, for driving without hardware.

The driver opens the pty as it would open the module's CH340, so what is tested is the exact
byte stream the module would see: frame boundaries, checksums, channel numbers and spacing.
The double parses the stream the strict way and keeps what it refused, so a driver that sends
one stray byte is caught instead of excused. Like the real modules it never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.sim.pty_device import PtyDevice

FRAME_START = 0xA0
FRAME_LEN = 4
OPS = {0x00: False, 0x01: True}


class LcusRelayDouble(PtyDevice):
    """A relay module with `channels` relays, all released at start (as at power-up).

    `on_change(channel, on)` is called from the reader thread for every valid frame, repeated
    commands included, with the channel's new state: a real module re-commands its coil the same
    way, and counting commands catches a driver that sends too many. Compare with `.states` first
    if only edges matter. An exception from the callback is kept in `.callback_errors` instead of
    killing the reader.

    Parsing: bytes before an 0xA0 are rejected as garbage; a 4-byte candidate with a bad sum,
    channel or op is rejected whole and parsing resumes at the next 0xA0 inside it, so a stray
    0xA0 cannot swallow the real frame that follows it. A byte may therefore appear in two
    `.rejected` entries.
    """

    def __init__(self, channels: int = 4, on_change: Callable[[int, bool], None] | None = None) -> None:
        if not 1 <= channels <= 255:
            raise ValueError(f"an LCUS relay double has 1..255 channels, not {channels}")
        self.channels = channels
        self.on_change = on_change
        self.states: dict[int, bool] = dict.fromkeys(range(1, channels + 1), False)
        self.frames: list[bytes] = []
        self.frame_times: list[float] = []  # time.monotonic() when each valid frame was complete
        self.rejected: list[tuple[bytes, str]] = []
        self.callback_errors: list[BaseException] = []
        self._buffer = bytearray()
        self._changed = threading.Condition()
        super().__init__("sim-lcus")
        self.start()

    def wait_frames(self, count: int, timeout: float = 2.0) -> list[bytes]:
        """Block until `count` valid frames have arrived in total; the frames so far either way."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.frames) >= count, timeout)
            return list(self.frames)

    def wait_rejected(self, count: int, timeout: float = 2.0) -> list[tuple[bytes, str]]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.rejected) >= count, timeout)
            return list(self.rejected)

    def received(self, data: bytes) -> None:
        self._feed(data, time.monotonic())

    def _feed(self, data: bytes, now: float) -> None:
        buffer = self._buffer
        buffer += data
        while buffer:
            start = buffer.find(FRAME_START)
            if start != 0:
                end = len(buffer) if start < 0 else start
                self._reject(bytes(buffer[:end]), "garbage before a frame start (0xA0)")
                del buffer[:end]
                continue
            if len(buffer) < FRAME_LEN:
                return  # a partial frame; the rest is still on its way
            candidate = bytes(buffer[:FRAME_LEN])
            reason = self._fault(candidate)
            if reason is None:
                del buffer[:FRAME_LEN]
                self._accept(candidate, now)
            else:
                self._reject(candidate, reason)
                restart = buffer.find(FRAME_START, 1, FRAME_LEN)
                del buffer[:FRAME_LEN if restart < 0 else restart]

    def _fault(self, candidate: bytes) -> str | None:
        _, channel, op, total = candidate
        expected = (FRAME_START + channel + op) & 0xFF
        if total != expected:
            return f"bad checksum: 0x{total:02X}, expected 0x{expected:02X}"
        if not 1 <= channel <= self.channels:
            return f"channel {channel} out of range 1..{self.channels}"
        if op not in OPS:
            return f"unknown op 0x{op:02X} (0x00 off, 0x01 on)"
        return None

    def _reject(self, data: bytes, reason: str) -> None:
        with self._changed:
            self.rejected.append((data, reason))
            self._changed.notify_all()

    def _accept(self, candidate: bytes, now: float) -> None:
        channel, on = candidate[1], OPS[candidate[2]]
        self.states[channel] = on
        if self.on_change is not None:
            try:
                self.on_change(channel, on)
            except Exception as exc:
                self.callback_errors.append(exc)
        # Recorded after the callback, so whoever waited for the frame also sees its effect.
        with self._changed:
            self.frames.append(candidate)
            self.frame_times.append(now)
            self._changed.notify_all()
