"""USB hub per-port power through uhubctl: `uhubctl -l <location> -p <port> -a on|off`, state from its status.

Only hubs that really switch VBUS per port (uhubctl's compatible list) cut anything; many hubs
accept the request and keep the port powered, which the read-back after each switch catches.
USB port power is for USB-powered accessories on the bench (a USB-SD-Mux, a UART adapter that
must be reset, a small board fed over USB), not for the board supply of an RK3588 board or a
Raspberry Pi 5: a hub port cannot deliver what those draw.

Output parsed (from uhubctl.c in github.com/mvp/uhubctl, not from a captured run on hardware):

    Current status for hub 1-1.4 [0bda:5411 Generic 4-Port USB 2.0 Hub, USB 2.10, 4 ports, ppps]
      Port 2: 0503 power highspeed enable connect [0403:6001 FTDI FT232R USB UART A50285BI]
      Port 3: 0000 off
    Sent power off request
    New status for hub 1-1.4 [...]

A port line's words after the hex status are flags; `power` means the port is powered, `off` (or
no `power`) that it is not. That holds for USB 2 hubs (bit 0x0100) and USB 3 hubs (0x0200, where
older uhubctl prints e.g. `00a0 5gbps Rx.Detect` with no `power` word for an unpowered port).
Very old releases printed the hub line as `Current status for hub 1-1, vendor 2001:f103, 7 ports`;
that form is accepted too, unverified against a real old binary. A USB 3 hub shows up twice (its
USB 2 and USB 3 halves, two locations): the block for the bench's location wins, and the port
is read from the last block printed (the "New status" after an action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch, maybe_inverted
from harness.power.shell_command import ToolRun, run_tool, tail

EXECUTABLE = "uhubctl"
DEFAULT_TIMEOUT_S = 10.0  # enumerating every hub over libusb can take seconds on a busy host
MISSING = ("uhubctl is not installed: install the Debian/Ubuntu package 'uhubctl' (sudo apt install uhubctl), "
           "or build it from github.com/mvp/uhubctl")
PERMISSION_HINT = ("uhubctl needs write access to the hub: run the harness as a user a udev rule allows "
                   "(see 'USB permissions' in uhubctl's README) rather than as root")
LOCATION = re.compile(r"^\d+(-\d+(\.\d+)*)?$")

_HUB = re.compile(r"^(?:Current|New) status for hub (?P<location>[^\s,\[]+)")
_PORT = re.compile(r"^\s+Port (?P<port>\d+): (?P<status>[0-9a-fA-F]{4})(?P<flags>[^\[]*)")


@dataclass(frozen=True)
class PortLine:
    """One `  Port N: xxxx flags [device]` line, under the hub block it was printed in."""

    location: str
    port: int
    status: int
    flags: tuple[str, ...]

    @property
    def powered(self) -> bool:
        return "power" in self.flags and "off" not in self.flags


def parse_status(output: str) -> list[PortLine]:
    """Every port line of uhubctl's output, in order; lines that fit neither pattern are skipped."""
    lines: list[PortLine] = []
    location: str | None = None
    for line in output.splitlines():
        if hub := _HUB.match(line):
            location = hub["location"]
        elif (port := _PORT.match(line)) and location is not None:
            lines.append(PortLine(location, int(port["port"]), int(port["status"], 16),
                                  tuple(port["flags"].split())))
    return lines


def port_state(output: str, location: str, port: int) -> bool | None:
    """The port's power as uhubctl last printed it: the bench's hub first, else its USB 3/2 twin; None if absent."""
    mine = [line for line in parse_status(output) if line.port == port]
    exact = [line for line in mine if line.location == location]
    chosen = exact or mine
    return chosen[-1].powered if chosen else None


class UhubctlPort:
    """One downstream port of a smart USB hub, switched by running uhubctl."""

    def __init__(self, location: str, port: int, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 executable: str = EXECUTABLE) -> None:
        self.location, self.port, self.timeout_s, self.executable = location, port, timeout_s, executable
        self.description = f"USB hub {location} port {port} (uhubctl)"

    def set(self, on: bool) -> None:
        self._run("-a", "on" if on else "off")

    def get(self) -> bool | None:
        done = self._run()
        state = port_state(done.stdout, self.location, self.port)
        if state is None:
            raise BenchError(f"{self.description}: uhubctl listed no port {self.port} for hub {self.location}; "
                             f"the hub may have fewer ports. Its output:\n{tail(done.output) or '(none)'}")
        return state

    def _run(self, *action: str) -> ToolRun:
        argv = [self.executable, "-l", self.location, "-p", str(self.port), *action]
        done = run_tool(argv, timeout_s=self.timeout_s, device=self.description, missing=MISSING)
        if done.returncode != 0:
            output = tail(done.output) or "(no output)"
            hint = ""
            if "permission" in done.output.lower():
                hint = f" {PERMISSION_HINT}."
            elif "No compatible" in done.output:
                hint = (f" No smart hub answers at location {self.location}: list them with 'uhubctl' alone and "
                        "copy the location of the hub whose port feeds the accessory.")
            raise BenchError(f"{self.description}: '{done.argv}' failed (exit status {done.returncode}).{hint}\n"
                             f"{output}")
        return done


class UhubctlSection(PowerSection):
    """A bench switch that is one port of a smart USB hub, by uhubctl's location and port number.

    uhubctl cannot power an RK3588 board or a Raspberry Pi 5: a USB port cannot deliver their
    supply current. Use it for USB-powered accessories (an SD mux, a UART adapter, a small
    USB-fed board), and only on hubs that really switch VBUS per port (uhubctl's compatible list).
    """

    kind: Literal["uhubctl"]
    location: str = Field(pattern=LOCATION.pattern, description="the hub as uhubctl names it, e.g. 1-1.4")
    port: int = Field(strict=True, ge=1, le=31, description="the hub's downstream port, from 1")
    invert: bool = False
    timeout_s: PositiveFloat = Field(default=DEFAULT_TIMEOUT_S, description="each uhubctl run is killed after this")

    example: ClassVar[str | None] = "{kind: uhubctl, location: 1-1.4, port: N}"


def build(section: UhubctlSection, context: PowerContext) -> PowerSwitch:
    """uhubctl is only run at `set`/`get`; nothing is touched here."""
    return maybe_inverted(UhubctlPort(section.location, section.port, timeout_s=section.timeout_s), section.invert)


BACKEND = PowerBackend(section=UhubctlSection, build=build)
