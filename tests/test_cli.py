"""The `hil` command: a person can open the standalone virtual board with a terminal program."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT

from harness.console.console import Console
from harness.power.lcus import LcusRelay

HIL = [sys.executable, "-m", "harness.cli"]


@pytest.fixture
def standalone_sim():
    child = subprocess.Popen([*HIL, "sim", "--board", "nanopi-m6", "--time-scale", "0.05", "--off"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [child.stdout.readline() for _ in range(3)]
    yield lines
    child.terminate()
    child.wait(timeout=10)


def test_hil_sim_prints_its_ptys_and_boots_when_its_relay_switches_on(standalone_sim, tmp_path: Path) -> None:
    lines = standalone_sim
    console_pty = lines[0].rsplit(" ", 1)[-1].strip()
    relay_pty = lines[1].rsplit(" ", 1)[-1].strip()
    assert console_pty.startswith("/dev/pts/") and relay_pty.startswith("/dev/pts/"), lines
    assert lines[2].startswith("open the console with: picocom -b 1500000 ")
    with Console(console_pty, 1500000, tmp_path) as console:
        time.sleep(0.3)
        assert console.bytes_received == 0, "the board is off: it must be silent"
        LcusRelay(relay_pty, 1).set(True)
        banner = console.expect(r"^U-Boot (?!SPL)(\S+) \(", 10)
        assert banner.group(1) == "2017.09-g5f5c0b5-dirty"
        console.expect(r"Hit key to stop autoboot", 10)
        console.sendcontrol("c")
        console.expect("=> ", 5)
        console.sendline("version")
        console.expect(r"aarch64-linux-gnu-gcc", 5)


def test_hil_sim_lists_faults_and_rejects_unknown_ones() -> None:
    listed = subprocess.run([*HIL, "sim", "--list-faults"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "hang:kernel" in listed.stdout and "uart-reenumerate" in listed.stdout
    bad = subprocess.run([*HIL, "sim", "--board", "nanopi-m6", "--fault", "bogus"], capture_output=True, text=True,
                         cwd=ROOT)
    assert bad.returncode == 2 and "unknown virtual board fault 'bogus'" in bad.stderr and "ddr-fail" in bad.stderr


def test_hil_check_validates_profiles_and_benches(tmp_path: Path) -> None:
    good = subprocess.run([*HIL, "check", "boards/nanopi-m6.yaml", "boards/rpi5-cm5.yaml"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    assert good.stdout.count(": ok") == 2
    bench = subprocess.run([*HIL, "check", "benches/desk-nanopi-m6.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert bench.returncode == 0, bench.stderr
    broken = tmp_path / "board.yaml"
    broken.write_text("name: Bad Name\n")
    bad = subprocess.run([*HIL, "check", str(broken)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and f"{broken}:1: key 'name'" in bad.stderr


def test_hil_boards_lists_the_profiles() -> None:
    done = subprocess.run([*HIL, "boards"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["nanopi-m6", "qemu-arm64", "rpi5-cm5"]
