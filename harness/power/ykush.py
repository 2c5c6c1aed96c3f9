"""Yepkit YKUSH / YKUSH3 switchable USB hubs through ykushcmd: `-u N` up, `-d N` down, `-g N` state.

    ykushcmd ykush -s YK12345 -u 2      # port 2 up (powered)
    ykushcmd ykush -s YK12345 -d 2      # port 2 down
    ykushcmd ykush -s YK12345 -g 2      # prints "Downstream port 2 is ON" (or OFF)

The status line is `printf("\\n\\nDownstream port %d is ON\\n\\n", ...)` in ykushcmd's source
(github.com/Yepkit/ykush, src/ykush/ykush.cpp and src/ykush3/ykush3.cpp), read from the source,
not captured from a real board. The failure texts checked ("Unable to open device", "Unable to
write/read ...", "No YKUSH boards found") are from the same source, also unverified on hardware;
ykushcmd prints them to stdout and still exits 0, so exit status alone proves nothing. Hence a
status line must name the port that was asked for: a board that did not answer leaves the
reply buffer empty, which prints as port 0.

As with uhubctl, a USB port feeds USB-powered accessories, not an RK3588 board or a Pi 5.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch, maybe_inverted
from harness.power.shell_command import ToolRun, run_tool, tail

EXECUTABLE = "ykushcmd"
DEFAULT_TIMEOUT_S = 5.0
MISSING = ("ykushcmd is not installed, and no distribution packages it: build and install it from Yepkit's "
           "ykush project, github.com/Yepkit/ykush (needs libusb-1.0 and hidapi headers; ./build.sh, then "
           "sudo ./install.sh), and give your user access to the hub with a udev rule")
FAILURES = ("Unable to", "No YKUSH boards found", "ERROR", "Error")
_STATE = re.compile(r"Downstream port (?P<port>\d+) is (?P<state>ON|OFF)", re.IGNORECASE)


def status_of(output: str, port: int) -> bool | None:
    """ON → True, OFF → False for `port`; None when no status line names that port."""
    for match in _STATE.finditer(output):
        if int(match["port"]) == port:
            return match["state"].upper() == "ON"
    return None


class YkushPort:
    """One downstream port of a YKUSH board, by its serial number (or the only board, without one)."""

    def __init__(self, port: int, serial: str | None = None, *, model: str = "ykush",
                 timeout_s: float = DEFAULT_TIMEOUT_S, executable: str = EXECUTABLE) -> None:
        self.port, self.serial, self.model, self.timeout_s, self.executable = port, serial, model, timeout_s, executable
        self.description = f"{model.upper()} {serial or '(the only board attached)'} port {port}"

    def set(self, on: bool) -> None:
        self._run("-u" if on else "-d")

    def get(self) -> bool | None:
        done = self._run("-g")
        state = status_of(done.stdout, self.port)
        if state is None:
            raise BenchError(f"{self.description}: '{done.argv}' printed no 'Downstream port {self.port} is ON/OFF' "
                             f"line; is the serial right and the board attached? Its output:\n"
                             f"{tail(done.output) or '(none)'}")
        return state

    def _run(self, flag: str) -> ToolRun:
        argv = [self.executable, self.model, *(["-s", self.serial] if self.serial else []), flag, str(self.port)]
        done = run_tool(argv, timeout_s=self.timeout_s, device=self.description, missing=MISSING)
        failed = [line.strip() for line in done.output.splitlines() if line.strip().startswith(FAILURES)]
        if done.returncode != 0 or failed:
            raise BenchError(f"{self.description}: '{done.argv}' failed (exit status {done.returncode}"
                             f"{'; ' + failed[0] if failed else ''}): check that the board is attached "
                             f"('{self.executable} {self.model} -l' lists the serial numbers) and that your user "
                             f"may open it.\n{tail(done.output) or '(no output)'}")
        return done


class YkushSection(PowerSection):
    """A bench switch that is one port of a Yepkit YKUSH (or YKUSH3) hub.

    `serial` picks the board (`ykushcmd ykush -l` lists them); leave it out only when exactly one
    board is attached. Like any USB port it can feed an accessory, not an RK3588 board or a Pi 5.
    """

    kind: Literal["ykush"]
    port: int = Field(strict=True, ge=1, le=3, description="downstream port 1..3, as printed on the board")
    serial: str | None = Field(default=None, min_length=1, description="the board's serial number, e.g. YK21234")
    model: Literal["ykush", "ykush3"] = Field(default="ykush", description="ykushcmd's board name")
    invert: bool = False
    timeout_s: PositiveFloat = Field(default=DEFAULT_TIMEOUT_S, description="each ykushcmd run is killed after this")

    example: ClassVar[str | None] = "{kind: ykush, serial: YK..., port: N}"


def build(section: YkushSection, context: PowerContext) -> PowerSwitch:
    """ykushcmd is only run at `set`/`get`; nothing is touched here."""
    switch = YkushPort(section.port, section.serial, model=section.model, timeout_s=section.timeout_s)
    return maybe_inverted(switch, section.invert)


BACKEND = PowerBackend(section=YkushSection, build=build)
