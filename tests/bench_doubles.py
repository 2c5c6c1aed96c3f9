"""A virtual board behind any power double, driven by a child pytest through a hardware bench file.

The test process plays the far side: the board on a pty, and a double of the switch that speaks the
device's own wire format (a pty, an HTTP server, a fake CLI) and powers the board when switched.
The child pytest sees only a bench file naming a serial port and a power section, exactly as on a
desk, so the power backend under test runs the same code path as with real hardware.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sim_support import fast_profile
from support import ROOT

from harness.image.synthetic import make_talos_like_image
from harness.sim.board import VirtualBoard
from harness.sim.transcript import load_transcript


@contextlib.contextmanager
def virtual_board(tmp_path: Path) -> Iterator[VirtualBoard]:
    """A NanoPi M6 on a pty with a Talos image on its microSD, off until its switch turns it on.

    At a quarter of real time: its U-Boot counts down for 250 ms, enough for a switch that reads its
    state back (an HTTP plug) before the session starts typing the interrupt key, even on a loaded machine.
    """
    board = VirtualBoard(fast_profile("nanopi-m6"), load_transcript("nanopi-m6"), time_scale=0.25,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    try:
        yield board
    finally:
        board.close()


def hardware_bench(tmp_path: Path, board: VirtualBoard, power: str, *, extra: str = "") -> Path:
    """A bench file wiring `board`'s console and the power section `power` (a YAML flow mapping)."""
    bench = tmp_path / "desk.yaml"
    bench.write_text(f"name: desk\nkind: hardware\nboard: nanopi-m6\nram_mb: 8192\n"
                     f"serial: {{url: {board.pty_path}}}\npower: {power}\n{extra}")
    return bench


def run_bootloader_gates(bench: Path, report_dir: Path, *, env: dict[str, str] | None = None,
                         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`pytest --board nanopi-m6 --bench <bench> -m bootloader`, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", str(bench),
         "-m", "bootloader", "--report-dir", str(report_dir)],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
