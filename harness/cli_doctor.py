"""`hil doctor --bench FILE`: the things that bite people at a new bench, each line ok or what to do.

It only looks: it opens the serial port (and closes it), reads sysfs and udev, and asks the switch
for its state; it never switches the board. Facts from the bench-hardware notes: a CP2102 cannot do
1.5 Mbaud, an FTDI adapter's default latency_timer (16 ms) makes expect loops sluggish, a device the
user cannot open needs a group (dialout, plugdev) or a udev rule, two CH340s collide without ID_PATH.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyudev

from harness.config.bench import Bench, load_bench
from harness.config.power_support import power_driver_problem
from harness.config.profile import board_dirs, load_profile
from harness.console.port import is_device_path, open_port
from harness.errors import HarnessError
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.registry import build_power
from harness.transports.udev import serial_locator

# USB UARTs that cannot keep up with a baud above their ceiling (vendor:model -> name, highest baud).
UART_CEILINGS = {("10c4", "ea60"): ("CP2102/CP2104", 1_000_000)}
FTDI_VENDOR = "0403"


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FIX '} {self.what}: {self.detail}"


def add_doctor_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    doctor = commands.add_parser("doctor", help="check a bench: UART, baud, permissions, the switch")
    doctor.add_argument("--bench", required=True, help="bench file (or a name in ./benches)")
    doctor.add_argument("--board", help="board profile, for the baud (default: the bench's board:)")
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    bench = load_bench(args.bench, Path.cwd() / "benches")
    board = args.board or bench.board
    baud = load_profile(board, board_dirs(Path.cwd())).console.firmware.baud if board else None
    findings = list(check_bench(bench, baud))
    for finding in findings:
        print(finding)
    return 0 if all(f.ok for f in findings) else 1


def check_bench(bench: Bench, baud: int | None) -> Iterator[Finding]:
    if bench.kind != "hardware" or bench.serial is None:
        yield Finding(True, "bench", f"'{bench.name}' is {bench.kind}: nothing on a desk to check")
        return
    node = yield from _serial_node(bench)
    if node is not None:
        yield from _uart(node, baud)
        yield _can_open(node, baud or 115200)
    yield from _switch(bench)


def _serial_node(bench: Bench) -> Iterator[Finding]:
    serial = bench.serial
    assert serial is not None
    if serial.url is not None and not is_device_path(serial.url):
        yield Finding(True, "serial", f"{serial.url} is a network URL: check it with `hil console`")
        return None
    try:
        node = serial.url if serial.url is not None else serial_locator(serial.udev or {})()
    except HarnessError as exc:
        yield Finding(False, "serial identity", str(exc))
        return None
    if node is None or not os.path.exists(node):
        yield Finding(False, "serial identity", f"{serial.url or serial.udev} is not present: plug the USB UART in "
                                                "(a board-powered one appears only while the board is on)")
        return None
    yield Finding(True, "serial identity", f"{serial.url or serial.udev} is {node}")
    if serial.url is not None and Path(serial.url).name.startswith("ttyUSB"):
        yield Finding(False, "serial identity", f"{serial.url} changes when the adapter re-enumerates: name it by "
                                                "udev properties (ID_PATH) or /dev/serial/by-path/...")
    return node


def _uart(node: str, baud: int | None) -> Iterator[Finding]:
    try:
        device = pyudev.Devices.from_device_file(pyudev.Context(), node)
    except (pyudev.DeviceNotFoundError, ValueError, OSError):
        yield Finding(True, "UART adapter", f"{node} is not a USB adapter udev knows (a pty or a built-in UART)")
        return
    vendor, model = device.properties.get("ID_VENDOR_ID", ""), device.properties.get("ID_MODEL_ID", "")
    yield adapter_finding(vendor, model, baud)
    if vendor == FTDI_VENDOR:
        latency = Path(f"/sys/bus/usb-serial/devices/{Path(node).name}/latency_timer")
        value = latency.read_text().strip() if latency.exists() else None
        yield Finding(value == "1", "FTDI latency_timer",
                      "1 ms" if value == "1" else f"{value or '?'} ms: echo 1 > {latency} (or a udev rule) so the "
                                                  "console sees output within a millisecond")


def adapter_finding(vendor: str, model: str, baud: int | None) -> Finding:
    """Whether this USB UART can carry the board's baud (a CP2102 cannot do 1.5 Mbaud)."""
    ceiling = UART_CEILINGS.get((vendor, model))
    if ceiling is not None and baud is not None and baud > ceiling[1]:
        return Finding(False, "UART adapter", f"{ceiling[0]} ({vendor}:{model}) cannot do {baud} baud (garbage): use "
                                              "a CH340 or FTDI FT232R adapter")
    return Finding(True, "UART adapter", f"{vendor or '?'}:{model or '?'} at {baud or 'the default'} baud")


def _can_open(node: str, baud: int) -> Finding:
    try:
        open_port(node, baud, where="hil doctor").close()
    except HarnessError as exc:
        return Finding(False, "serial access", str(exc))
    return Finding(True, "serial access", f"{node} opens at {baud} baud")


def _switch(bench: Bench) -> Iterator[Finding]:
    if bench.power is None:
        yield Finding(False, "power", power_driver_problem(bench) or "no power section")
        return
    device = getattr(bench.power, "port", None) or getattr(bench.power, "device", None)
    if isinstance(device, str) and is_device_path(device) and not os.path.exists(device):
        yield Finding(False, "power", f"{device} (power.{'port' if hasattr(bench.power, 'port') else 'device'}) is "
                                      "not present: plug the relay in, or fix the bench file")
        return
    try:
        control = PowerControl(build_power(bench.power, PowerContext(bench=bench.name, secret=bench.secret)))
        status = control.status()
    except HarnessError as exc:
        yield Finding(False, "power", str(exc))
        return
    yield Finding(True, "power", f"{control.description}: {status}")
