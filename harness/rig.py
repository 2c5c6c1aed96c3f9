"""Assemble what a bench file describes into live parts: console, power switch, virtual board.

This is the only place that knows whether the far side is real; everything above gets a
`BringUpSession` and cannot tell.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from harness.config.bench import Bench
from harness.config.profile import BoardProfile
from harness.console.console import Console
from harness.errors import BenchError, ConfigError
from harness.power.sim import VirtualBoardPower
from harness.session import BringUpSession
from harness.sim.board import VirtualBoard
from harness.sim.transcript import load_transcript


def describe_bench(bench: Bench) -> str:
    return "virtual board" if bench.is_virtual else "real hardware"


@contextlib.contextmanager
def bring_up(profile: BoardProfile, bench: Bench, log_dir: Path) -> Iterator[BringUpSession]:
    """Open the console before anything is powered, and leave the board off afterwards."""
    with contextlib.ExitStack() as stack:
        if bench.kind == "sim":
            assert bench.sim is not None
            board = VirtualBoard(load_transcript(profile.name, bench.sim.transcript), ram_mb=bench.ram_mb or 8192,
                                 time_scale=bench.sim.time_scale)
            stack.callback(board.close)
            url: str = board.pty_path
            power = VirtualBoardPower(board)
            off_time = 0.05
        else:
            if bench.serial is None or bench.serial.url is None:
                raise ConfigError(f"bench '{bench.name}': serial.udev lookup needs the udev transport "
                                  "(not in this version); give serial.url instead")
            url = bench.serial.url
            power = _hardware_power(bench)
            off_time = bench.power.off_time_s if bench.power else 2.0
        console = Console(url, profile.console.firmware.baud, log_dir,
                          char_delay_s=profile.console.char_delay_ms / 1000,
                          where=f"bench '{bench.name}' serial")
        console.open()
        stack.callback(console.close)
        session = BringUpSession(profile, bench, console, power, off_time_s=off_time)
        stack.callback(_leave_off, session)
        yield session


def _leave_off(session: BringUpSession) -> None:
    try:
        session.power_off()
    except BenchError as exc:
        session.console.log.event(f"could not switch the board off at the end: {exc}")


def _hardware_power(bench: Bench) -> VirtualBoardPower:
    raise ConfigError(
        f"bench '{bench.name}': power kind "
        f"'{bench.power.kind if bench.power else 'none'}' has no driver in this version; "
        "the relay drivers are the next piece of work (see the README's status)")
