"""Numato Lab USB relay modules (1/2/4/8/16/32 channels): a CDC serial port and a text console.

Each command is a line ending in `\\r`: `relay on N`, `relay off N`, `relay read N`, `ver`. The
module echoes the command, answers `on`/`off` to a read (the version to `ver`), and ends with a
`>` prompt. Relays are numbered from 0; 10 and up are written as letters (10 → A, 31 → V), as
printed on the 16- and 32-channel boards. Unlike an LCUS module the Numato can say what its
relay is doing, so `get()` is a real read-back: a channel the module lacks shows up there instead
of going unnoticed.

The port is opened per command and closed again, for the reasons in harness.power.lcus (several
boards on one module, re-enumeration); the module's console is a line discipline, so commands to
one port are serialised in-process. Every exchange is bounded by the section's `timeout_s`: a
silent module, or one that answers something that is not its console, is a BenchError naming
the port and the channel, never a hang.

`power: {kind: numato, port: /dev/serial/by-id/usb-Numato..., channel: 0, invert: false, off_time_s: 2}`
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import ClassVar, Literal

import serial
from pydantic import Field, PositiveFloat

from harness.console.port import is_device_path, open_port
from harness.errors import BenchError, ConfigError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch, maybe_inverted

BAUD = 19200  # a CDC device ignores it; pyserial needs some value
CHANNELS = range(0, 32)  # the 32-channel module is the largest: 0-9 and A-V
PROMPT = b">"
DEFAULT_TIMEOUT_S = 1.0
BUSY_RETRY_S = 1.0
WHERE = "the bench's power.port"

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def channel_name(channel: int) -> str:
    """How the module's console spells relay `channel`: 0-9, then A for 10 up to V for 31."""
    if isinstance(channel, bool) or not isinstance(channel, int) or channel not in CHANNELS:
        raise ConfigError(f"a Numato relay channel is 0..31 (10 and up are A..V on the board), got {channel!r}")
    return str(channel) if channel < 10 else chr(ord("A") + channel - 10)


def _lock_for(url: str) -> threading.Lock:
    key = os.path.realpath(url) if is_device_path(url) else url
    with _locks_lock:
        return _locks.setdefault(key, threading.Lock())


def _lines(data: bytes) -> list[str]:
    """Non-empty lines of an answer; the module ends lines with \\n\\r, so both are separators."""
    text = data.decode("ascii", errors="replace").replace("\r", "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]


class NumatoRelay:
    """One relay of a Numato module, driven through its serial console (device path or pyserial URL)."""

    def __init__(self, url: str, channel: int = 0, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.channel = channel
        self.name = channel_name(channel)
        if timeout_s <= 0:
            raise ConfigError(f"Numato relay {url}: timeout must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self.description = f"Numato relay {url} channel {channel}" + (f" ({self.name})" if channel >= 10 else "")
        self._lock = _lock_for(url)

    def set(self, on: bool) -> None:
        command = f"relay {'on' if on else 'off'} {self.name}"
        answer = self.exchange(command)
        if answer:
            raise BenchError(f"{self.description}: the module answered {command!r} with {' / '.join(answer)!r} "
                             f"instead of only its prompt ({WHERE}): {self._channel_hint()}")
        time.sleep(0.01)  # the coil pulls in within a few ms of the command being taken

    def get(self) -> bool | None:
        """The relay's state as the module reports it (`relay read`), not what was last commanded."""
        command = f"relay read {self.name}"
        answer = self.exchange(command)
        if answer in (["on"], ["off"]):
            return answer == ["on"]
        got = " / ".join(answer) if answer else "nothing but its prompt"
        raise BenchError(f"{self.description}: the module answered {command!r} with {got!r} instead of on/off "
                         f"({WHERE}): {self._channel_hint()}")

    def version(self) -> str:
        """The module's firmware version (`ver`): a cheap way to prove the port is a Numato console."""
        return " ".join(self.exchange("ver"))

    def exchange(self, command: str) -> list[str]:
        """Send one command; return the module's answer lines between its echo and its prompt."""
        with self._lock:
            port = self._open()
            try:
                return self._talk(port, command)
            finally:
                port.close()

    def _channel_hint(self) -> str:
        return (f"channel {self.channel} may not exist on this module (an N-channel module has relays "
                f"0..N-1, 10 and up written A..V), or the port is not a Numato relay")

    def _talk(self, port: serial.SerialBase, command: str) -> list[str]:
        echo = command.encode("ascii")
        try:
            port.reset_input_buffer()  # a prompt left from an earlier session is not this command's answer
            port.write(echo + b"\r")
            port.flush()
            received = bytearray()
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                received += port.read(max(1, port.in_waiting))
                start = received.find(echo)
                if start >= 0 and PROMPT in received[start + len(echo):]:
                    body = received[start + len(echo):]
                    return _lines(bytes(body[:body.rindex(PROMPT)]))
        except (serial.SerialException, OSError) as exc:
            raise BenchError(f"{self.description}: talking to the module failed ({exc}) ({WHERE}): check that "
                             "it is still plugged in (dmesg shows a cdc_acm disconnect)") from exc
        if not received:
            raise BenchError(f"{self.description}: no answer to {command!r} within {self.timeout_s:g} s ({WHERE}): "
                             "check that the port is the Numato module's (ls -l /dev/serial/by-id) and that "
                             "no other program holds it")
        shown = bytes(received[-120:])
        raise BenchError(f"{self.description}: the answer to {command!r} was not the module's echo and '>' prompt "
                         f"within {self.timeout_s:g} s; got {shown!r} ({WHERE}): is this port a Numato relay?")

    def _open(self) -> serial.SerialBase:
        deadline = time.monotonic() + BUSY_RETRY_S
        while True:
            try:
                return open_port(self.url, BAUD, where=WHERE)
            except BenchError as exc:
                busy = getattr(exc.__cause__, "errno", None) in (errno.EAGAIN, errno.EBUSY)
                if not busy or time.monotonic() >= deadline:
                    raise BenchError(f"{self.description}: {exc}") from exc
            time.sleep(0.02)


class NumatoSection(PowerSection):
    """A bench's Numato USB relay: the module's serial device and the relay the board's supply goes through.

    Wire the supply through the normally-open contact so an unpowered module means the board is
    off; `invert` is for normally-closed wiring. Name the port by /dev/serial/by-id (Numato
    modules carry a serial number), not /dev/ttyACMn, which moves when modules are replugged.
    """

    kind: Literal["numato"]
    port: str = Field(min_length=1, description="the module's serial device, e.g. /dev/serial/by-id/usb-Numato...")
    channel: int = Field(default=0, strict=True, ge=0, le=31,
                         description="relay number from 0; 10..31 are the relays printed A..V")
    invert: bool = False
    timeout_s: PositiveFloat = Field(default=DEFAULT_TIMEOUT_S, description="longest wait for the module's prompt")

    example: ClassVar[str | None] = "{kind: numato, port: /dev/serial/by-id/..., channel: N}"


def build(section: NumatoSection, context: PowerContext) -> PowerSwitch:
    """One relay of the module; the port is opened per command, so nothing is touched here."""
    return maybe_inverted(NumatoRelay(section.port, section.channel, timeout_s=section.timeout_s), section.invert)


BACKEND = PowerBackend(section=NumatoSection, build=build)
