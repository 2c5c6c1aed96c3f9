"""`hil console --bench FILE`: a person attached to the board's console, through the same engine.

Everything is logged like a run (console.raw, console.log, events.jsonl in --log-dir), secrets are
masked before they reach the terminal, and the relay is at hand: `--power-cycle` switches the board
off and on after attaching, so the first line of the boot is on screen. Ctrl-] (or end of input) quits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path

from harness.config.bench import Bench, load_bench
from harness.config.profile import board_dirs, load_profile
from harness.console.console import Console
from harness.console.secrets import secrets_of
from harness.errors import ConfigError
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.registry import build_power
from harness.transports.udev import serial_locator

QUIT = b"\x1d"  # Ctrl-], as telnet


def add_console_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = commands.add_parser("console", help="attach to a bench's board console (logged; Ctrl-] quits)")
    console.add_argument("--bench", required=True, help="bench file (or a name in ./benches)")
    console.add_argument("--board", help="board profile, for the baud (default: the bench's board:)")
    console.add_argument("--baud", type=int, help="baud instead of the profile's")
    console.add_argument("--power-cycle", action="store_true", help="switch the board off and on once attached")
    console.add_argument("--log-dir", help="where the console logs go (default: reports/console-<time>)")
    console.set_defaults(handler=run_console)


def run_console(args: argparse.Namespace) -> int:
    bench = load_bench(args.bench, Path.cwd() / "benches")
    if bench.kind != "hardware" or bench.serial is None:
        raise ConfigError(f"bench '{bench.name}' is {bench.kind}: `hil console` attaches to a hardware bench "
                          "(`hil sim` prints the virtual board's console to open)")
    baud = args.baud or _profile_baud(bench, args.board)
    log_dir = Path(args.log_dir or f"reports/console-{time.strftime('%Y%m%d-%H%M%S')}")
    url = bench.serial.url if bench.serial.url is not None else serial_locator(bench.serial.udev or {})
    with Console(url, baud, log_dir, where=f"bench '{bench.name}' serial", secrets=secrets_of(bench)) as console:
        print(f"hil console: {bench.name} at {baud} baud; logging to {console.log.log_path}; Ctrl-] quits",
              file=sys.stderr, flush=True)
        console.mark()
        if args.power_cycle:
            if bench.power is None:
                raise ConfigError(f"bench '{bench.name}' has no power section to cycle")
            switch = build_power(bench.power, PowerContext(bench=bench.name, secret=bench.secret))
            with console.log.steps.step("power cycle"):
                PowerControl(switch, off_time_s=bench.power.off_time_s).cycle()
        _pump(console)
    return 0


def _profile_baud(bench: Bench, board: str | None) -> int:
    name = board or bench.board
    if name is None:
        raise ConfigError(f"bench '{bench.name}' names no board: pass --board NAME or --baud N")
    return load_profile(name, board_dirs(Path.cwd())).console.firmware.baud


def _pump(console: Console) -> None:
    """Board to terminal, keyboard to board, until Ctrl-] or the end of input."""
    shown = 0
    with _raw_terminal():
        while True:
            new = console.received_since_mark(shown)
            if new:
                shown += len(new)
                sys.stdout.buffer.write(new)
                sys.stdout.buffer.flush()
            readable, _, _ = select.select([sys.stdin.fileno()], [], [], 0.02)
            if not readable:
                continue
            typed = os.read(sys.stdin.fileno(), 1024)
            before, quit_key, _ = typed.partition(QUIT)
            if before:
                console.send(before)
            if not typed or quit_key:
                return


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    """Keys go to the board as typed (Ctrl-C included) while a person is attached; restored on the way out."""
    if not sys.stdin.isatty():
        yield
        return
    saved = termios.tcgetattr(sys.stdin.fileno())
    tty.setraw(sys.stdin.fileno())
    try:
        yield
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
