"""A GPIO line (libgpiod v2, PyPI `gpiod`) driving a relay module's input or a MOSFET's gate.

Typical bench: a Raspberry Pi or another SBC is the bench host, and one of its header pins drives
the relay that switches the board under test. With the GPIO character device a line's value holds
only while a request on it is open: a process that requests the line, sets it and exits leaves it
to the driver, which may reset it (this is why `gpioset` must stay running, or be daemonized). So
the line is requested once, on the first `set`, as an output with the wanted value (no glitch
through the other state), kept while this switch lives, and released by `close()` (or when the
process ends, which closes the request's file descriptor).

`active_low` is libgpiod's own: for an active-low relay module (most cheap optocoupler boards pull
their input low to energise), `on` drives the pin low, and the read-back is inverted the same way
by the kernel, so `get()` still means "the board has power". Wire the supply through the relay's
normally-open contact and pick a pin whose value at reset, and while no one holds the request,
leaves the relay released: then a crashed run or a rebooted bench host means the board is off.

`get()` reads the value back from the kernel through the request (the value the pin is driven to,
not the relay contact: nothing on a plain GPIO can tell that).

The machine this was written on has no GPIO support in its kernel (no /dev/gpiochip*, and no
gpio-sim module to make one), so the tests drive a double of the v2 request object injected
through `GpioLine(request_lines=...)`, and check the real `gpiod` package only for what needs no
chip (a missing chip is refused by it as on a bench host without the line).

Section: `power: {kind: gpiod, chip: gpiochip0, line: 17, active_low: false, off_time_s: 2}`.
"""

from __future__ import annotations

import errno
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field, StrictInt, StrictStr, field_validator

from harness.errors import BenchError, ConfigError
from harness.power.base import PowerBackend, PowerContext, PowerSection

CONSUMER = "talos-harness"  # what `gpioinfo` shows as the holder of the line
INSTALL = ("the gpiod power kind needs the libgpiod v2 Python bindings: pip install gpiod (PyPI 'gpiod' >= 2, "
           "which builds libgpiod in); Debian 12's python3-libgpiod is the v1 API and will not do")


class LineRequest(Protocol):
    """What this switch uses of a `gpiod.LineRequest` (v2): set, read back, release."""

    def set_value(self, line: int | str, value: Any) -> None: ...

    def get_value(self, line: int | str) -> Any: ...

    def release(self) -> None: ...


RequestLines = Callable[..., LineRequest]


def load_gpiod() -> ModuleType:
    """The v2 `gpiod` module, or a ConfigError naming what to install: asked at build, before any run."""
    try:
        import gpiod
    except ImportError as exc:
        raise ConfigError(INSTALL) from exc
    if not callable(getattr(gpiod, "request_lines", None)) or not hasattr(gpiod, "LineSettings"):
        version = getattr(gpiod, "__version__", "unknown version")
        raise ConfigError(f"the installed gpiod module ({version}, {getattr(gpiod, '__file__', '?')}) is the v1 API "
                          f"(no gpiod.request_lines); {INSTALL}")
    return gpiod


def chip_path(chip: str) -> str:
    """A chip as a device path: `gpiochip0` is /dev/gpiochip0; a path is kept as written."""
    return chip if chip.startswith("/") else f"/dev/{chip}"


class GpioLine:
    """One GPIO line as the board's power switch, held requested as an output from the first `set` to `close`.

    `request_lines` is `gpiod.request_lines` (the seam a test replaces with a double of the request);
    `gpiod` is the v2 module, for LineSettings/Direction/Value.
    """

    def __init__(self, chip: str, line: int | str, *, active_low: bool = False, consumer: str = CONSUMER,
                 gpiod: ModuleType | None = None, request_lines: RequestLines | None = None) -> None:
        self.gpiod = gpiod if gpiod is not None else load_gpiod()
        self.request_lines: RequestLines = request_lines if request_lines is not None else self.gpiod.request_lines
        self.chip = chip_path(chip)
        self.line = line
        self.active_low = active_low
        self.consumer = consumer
        self.description = f"GPIO {self.chip} line {line}" + (" (active-low)" if active_low else "")
        self._request: LineRequest | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def set(self, on: bool) -> None:
        value = self._value(on)
        if self._request is None:
            self._request = self._request_line(value)
            return
        try:
            self._request.set_value(self.line, value)
        except OSError as exc:
            raise BenchError(f"{self.description}: setting the line {'on' if on else 'off'} failed ({exc}): the "
                             "chip may have gone (a USB GPIO expander unplugged?); the board's power is "
                             "unknown") from exc

    def get(self) -> bool | None:
        """The line's value read back through the request (True = active = power); None before the first `set`.

        Not read before: reading would mean requesting the line, and requesting it as an input
        would let go of whatever another process drives it to.
        """
        if self._request is None:
            return None
        try:
            value = self._request.get_value(self.line)
        except OSError as exc:
            raise BenchError(f"{self.description}: reading the line back failed ({exc})") from exc
        return bool(value == self.gpiod.line.Value.ACTIVE)

    def close(self) -> None:
        """Release the line: from here the kernel's driver decides its level (see the module's wiring advice)."""
        request, self._request = self._request, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if request is not None:
            request.release()

    def __enter__(self) -> GpioLine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _value(self, on: bool) -> Any:
        values = self.gpiod.line.Value
        return values.ACTIVE if on else values.INACTIVE

    def _request_line(self, value: Any) -> LineRequest:
        line_api = self.gpiod.line
        settings = self.gpiod.LineSettings(direction=line_api.Direction.OUTPUT, output_value=value,
                                           active_low=self.active_low)
        try:
            request = self.request_lines(self.chip, consumer=self.consumer, config={self.line: settings})
        except FileNotFoundError as exc:
            if not Path(self.chip).exists():
                raise BenchError(f"{self.description}: no such GPIO chip {self.chip} (power.chip): `gpiodetect` "
                                 "lists this host's chips; a kernel without GPIO support has none") from exc
            raise BenchError(f"{self.description}: {self.chip} has no line named {self.line!r} (power.line): "
                             f"`gpioinfo -c {self.chip}` lists its lines") from exc
        except ValueError as exc:
            raise BenchError(f"{self.description}: {exc} (power.line): `gpioinfo -c {self.chip}` lists the "
                             "chip's lines") from exc
        except OSError as exc:
            raise BenchError(f"{self.description}: requesting the line failed: {self._why(exc)}") from exc
        # A switch dropped without close() still lets go of the line when it is collected.
        self._finalizer = weakref.finalize(self, request.release)
        return request

    def _why(self, exc: OSError) -> str:
        if exc.errno == errno.EBUSY:
            return (f"{exc.strerror or exc}: another process holds it (`gpioinfo -c {self.chip}` names the "
                    "consumer: another harness run, a gpioset left running, or a kernel driver such as gpio-leds)")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (f"{exc.strerror or exc}: this user may not open {self.chip}; add it to the group owning the "
                    "device (often 'gpio') or add a udev rule")
        if exc.errno == errno.ENODEV:
            return f"{exc.strerror or exc}: {self.chip} is not a GPIO character device (power.chip)"
        return str(exc)


class GpiodSection(PowerSection):
    """A bench's GPIO-driven relay: the chip, the line, and whether the relay input is active-low."""

    kind: Literal["gpiod"]
    chip: str = Field(min_length=1, description="the GPIO chip: a device path (/dev/gpiochip0) or its name "
                                                "(gpiochip0), as `gpiodetect` lists them")
    line: StrictInt | StrictStr = Field(description="the line's offset on the chip (17 for BCM GPIO17 on a "
                                                    "Pi), or its name as `gpioinfo` shows it")
    active_low: bool = Field(default=False, description="the relay module energises when its input is low")

    example: ClassVar[str | None] = "{kind: gpiod, chip: gpiochip0, line: N}"

    @field_validator("line")
    @classmethod
    def _a_line(cls, line: int | str) -> int | str:
        """Refused in the file: a negative offset or an empty name can never be a line (strict: `true` is not 1)."""
        if isinstance(line, int) and line < 0:
            raise ValueError(f"a line is an offset from 0 or a line name, got {line!r}")
        if isinstance(line, str) and not line.strip():
            raise ValueError("the line name must not be empty")
        return line


def build(section: GpiodSection, context: PowerContext) -> GpioLine:
    """The line's switch; the gpiod package is checked here, the chip only at the first `set`."""
    return GpioLine(section.chip, section.line, active_low=section.active_low, consumer=f"{CONSUMER}:{context.bench}")


BACKEND = PowerBackend(section=GpiodSection, build=build)
