"""`hil power` for people at the bench, the MaskROM key, and --keep-on-failure."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench_doubles import hardware_bench, virtual_board
from sim_support import fast_profile
from support import GATES, ROOT, read_report

from harness.config.bench import load_bench
from harness.rig import bring_up
from harness.sim.relay import LcusRelayDouble


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_hil_power_cycles_the_virtual_board_and_reports_what_it_can_read_back(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            LcusRelayDouble(channels=2, on_change=lambda ch, on: ch == 1 and board.power(on)) as relay:
        bench = hardware_bench(tmp_path, board, f"{{kind: lcus, port: {relay.pty_path}, channel: 1, off_time_s: 0.3}}")
        done = hil("power", "cycle", "--bench", str(bench))
        assert done.returncode == 0, done.stderr
        assert board.powered and board.power_on_count == 1
        assert [f.hex(" ").upper() for f in relay.frames[-2:]] == ["A0 01 00 A1", "A0 01 01 A2"], "off, then on"
        assert f"desk power (LCUS relay {relay.pty_path} channel 1): unknown (" in done.stdout, done.stdout
        off = hil("power", "off", "--bench", str(bench))
        assert off.returncode == 0 and not board.powered, off.stderr


def test_hil_power_on_a_relay_that_is_not_there_fails_naming_it(tmp_path: Path) -> None:
    bench = tmp_path / "desk.yaml"
    bench.write_text("name: desk\nserial: {url: /dev/null}\npower: {kind: lcus, port: /dev/hil-no-relay}\n")
    done = hil("power", "on", "--bench", str(bench))
    assert done.returncode != 0 and "/dev/hil-no-relay" in done.stderr, done.stderr


def test_hil_power_refuses_a_virtual_bench() -> None:
    done = hil("power", "status", "--bench", "sim")
    assert done.returncode == 2 and "switches a hardware bench" in done.stderr


def test_the_maskrom_key_is_held_while_power_is_applied_then_released(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            LcusRelayDouble(channels=2, on_change=lambda ch, on: ch == 1 and board.power(on)) as relay:
        bench = hardware_bench(tmp_path, board, f"{{kind: lcus, port: {relay.pty_path}, channel: 1, off_time_s: 0.1}}",
                               extra=f"maskrom: {{kind: lcus, port: {relay.pty_path}, channel: 2}}\n")
        with bring_up(fast_profile("nanopi-m6"), load_bench(str(bench), tmp_path), tmp_path / "logs") as session:
            before = len(relay.frames)
            session.power_on_into_maskrom(hold_s=0.2)
            frames = [f.hex(" ").upper() for f in relay.frames[before:]]
        assert frames == ["A0 02 01 A3", "A0 01 01 A2", "A0 02 00 A2"], "press, power on, release"
        assert relay.states[2] is False and relay.states[1] is False
        pressed = hil("power", "on", "--maskrom", "--bench", str(bench))
        assert pressed.returncode == 0 and relay.states[2] is True, pressed.stderr


def test_keep_on_failure_leaves_a_failed_board_powered_and_says_so(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim",
         "--sim-fault", "ddr-wrong-clock", "-m", "bootloader", "--keep-on-failure", "--report-dir", str(report_dir),
         str(GATES)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "the board is left on for a person to look at (--keep-on-failure)" in done.stdout
    log = (report_dir / "console.log").read_text()
    tail = log[log.index("[hil] the board is left on"):]
    assert "[hil] power off" not in tail, "nothing switched it off after the failure"
    assert "The board was left on" in read_report(report_dir / "report.html")["html"]
    time.sleep(0)  # the virtual board went with its process; the record is what a person reads


def test_keep_on_failure_still_switches_a_passing_board_off(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim",
         "-m", "bootloader", "--keep-on-failure", "--report-dir", str(report_dir), str(GATES)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (report_dir / "console.log").read_text().rstrip().endswith("[hil] console closed")
    assert "[hil] power off\n" in (report_dir / "console.log").read_text().split("[hil] stage u-boot")[-1]
