"""Open a console port from a pyserial URL, turning each way it can fail into advice.

A device path, `rfc2217://`, `socket://` and `loop://` all come through `serial_for_url`; the
messages name the device and the bench key so the person at the bench knows what to touch.
"""

from __future__ import annotations

import errno
import os

import serial

from harness.errors import BenchError


def is_device_path(url: str) -> bool:
    return "://" not in url


def open_port(url: str, baud: int, *, where: str = "the bench's serial.url") -> serial.SerialBase:
    """Open `url` at `baud` with a short read timeout, exclusively when it is a local device."""
    options: dict[str, object] = {"baudrate": baud, "timeout": 0.05}
    if not url.lower().startswith("rfc2217://"):
        options["write_timeout"] = 5  # pyserial's RFC 2217 client refuses to open with any write timeout
    if is_device_path(url):
        if not os.path.exists(url):
            raise BenchError(
                f"serial device {url} does not exist ({where}): check that the USB UART is plugged in "
                "and powered, or identify it by udev properties so a new /dev/ttyUSBn is found")
        options["exclusive"] = True  # two readers on one UART each lose half the bytes
    try:
        return serial.serial_for_url(url, **options)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise _explain(url, baud, exc, where) from exc


def _explain(url: str, baud: int, exc: Exception, where: str) -> BenchError:
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.EACCES or "Permission denied" in text:
        return BenchError(
            f"permission denied opening serial device {url} ({where}): add your user to the group that "
            "owns it (usually 'dialout': sudo usermod -aG dialout $USER, then log in again) or add a udev rule")
    if code == errno.ENOENT or "No such file" in text:
        return BenchError(f"serial device {url} does not exist ({where}): check the cable and the bench file")
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text.lower():
        return BenchError(
            f"serial device {url} is in use by another program (picocom, screen, minicom, another harness "
            "run?): close it and try again")
    lowered = text.lower()
    if "parameter change" in lowered:
        return BenchError(
            f"network console {url} refused baud {baud} ({where}): its RFC 2217 server did not accept the "
            f"speed change ({text}). Check that the server's serial adapter supports {baud} baud (CH340 or FTDI "
            "for 1500000; CP2102 cannot) and that the server allows clients to change the speed")
    if "baud" in lowered or code == errno.EINVAL:
        return BenchError(
            f"serial port {url} refused baud {baud} ({text}). The board profile asks for this speed: use an "
            "adapter that supports it (CH340 or FTDI for 1500000; CP2102 cannot), or, for a network "
            "console, a ser2net accepter of type telnet(rfc2217)")
    if "Remote does not" in text or "RFC2217" in text:
        return BenchError(f"network console {url} does not speak RFC 2217 ({text}); use socket:// for a raw "
                          "TCP port, or configure ser2net with 'accepter: telnet(rfc2217),tcp,PORT'")
    return BenchError(f"cannot open serial port {url} ({where}) at {baud} baud: {text}")
