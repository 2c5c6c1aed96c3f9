"""`hil doctor`: each line ok or what to do, exit 1 when anything needs fixing; it never switches the board."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench_doubles import hardware_bench, virtual_board
from support import ROOT

from harness.cli_doctor import adapter_finding
from harness.sim.relay import LcusRelayDouble


def doctor(bench: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "doctor", "--bench", str(bench)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_a_bench_whose_devices_are_missing_gets_what_to_do_for_each(tmp_path: Path) -> None:
    done = doctor(ROOT / "benches" / "desk-nanopi-m6.yaml")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("FIX  serial identity: /dev/serial/by-path/") and "plug the USB UART in" in lines[0]
    assert lines[1].startswith("FIX  power: /dev/serial/by-path/") and "plug the relay in" in lines[1]


def test_a_working_bench_is_all_ok_and_nothing_is_switched(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            LcusRelayDouble(channels=1, on_change=lambda _ch, on: board.power(on)) as relay:
        done = doctor(hardware_bench(tmp_path, board, f"{{kind: lcus, port: {relay.pty_path}}}"))
        assert done.returncode == 0, done.stdout
        assert all(line.startswith("ok   ") for line in done.stdout.splitlines()), done.stdout
        assert f"ok   serial access: {board.pty_path} opens at 1500000 baud" in done.stdout
        assert "unknown (this switch cannot report its state)" in done.stdout
        assert relay.frames == [] and not board.powered, "doctor only looks"


def test_a_cp2102_cannot_carry_one_and_a_half_megabaud() -> None:
    assert not adapter_finding("10c4", "ea60", 1_500_000).ok
    assert "cannot do 1500000 baud" in str(adapter_finding("10c4", "ea60", 1_500_000))
    assert adapter_finding("10c4", "ea60", 115_200).ok and adapter_finding("1a86", "7523", 1_500_000).ok
