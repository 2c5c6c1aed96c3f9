"""Every way a run stops leaves the board off and the record written.

A child pytest runs the gates; the test sends it SIGINT, SIGTERM or SIGHUP once the board reaches
a stage, and checks what a CI cancel must leave behind: the run exits non-zero, the board was
switched off after the signal, the console log was closed cleanly, report.html and JUnit exist
and name the interrupted gate, and no process of the run is left. The child's handlers are set
explicitly (SIG_DFL before exec), so the suite behaves the same started in the background, under
nohup or by a CI runner that ignores SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import BOARDS, GATES, ROOT, read_report

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _default_signal_handlers() -> None:
    """Runs in the child before exec: undo whatever the test runner's parent ignored."""
    for number in SIGNALS:
        signal.signal(number, signal.SIG_DFL)


def start_run(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    report_dir = tmp_path / "report"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--report-dir", str(report_dir),
         f"--junitxml={report_dir / 'junit.xml'}", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_default_signal_handlers, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return child, report_dir


def wait_for_line(log: Path, text: str, child: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        if child.poll() is not None:
            pytest.fail(f"the run ended before {text!r}: {child.communicate()[0].decode()}")
        time.sleep(0.05)
    child.kill()
    pytest.fail(f"{text!r} never appeared in {log}")


def stop_and_check(child: subprocess.Popen[bytes], report_dir: Path, number: signal.Signals) -> str:
    """Send the signal; check exit, power-off, closed log, report and JUnit; return the interrupted gate."""
    child.send_signal(number)
    output, _ = child.communicate(timeout=60)
    text = output.decode()
    assert child.returncode not in (0, None), text
    assert f"interrupted by {number.name}" in text, text
    log = (report_dir / "console.log").read_text()
    after = log[log.rindex("[hil] power on"):]
    assert "[hil] power off" in after, f"the board was not switched off after {number.name}:\n{log[-2000:]}"
    assert log.rstrip().endswith("[hil] console closed"), log[-500:]
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)  # nothing of the run's process group is left (QEMU included)
    cases = ET.parse(report_dir / "junit.xml").getroot().iter("testcase")
    interrupted = [c for c in cases if any(f"interrupted by {number.name}" in (e.get("message") or "")
                                           for e in c)]
    assert len(interrupted) == 1, ET.tostring(ET.parse(report_dir / "junit.xml").getroot()).decode()[:3000]
    case = interrupted[0]
    assert case.get("name"), "the interrupted testcase is named"
    requirement = next(p.get("value") for p in case.iter("property") if p.get("name") == "requirement")
    report = read_report(report_dir / "report.html")
    row = report["html"][report["html"].index(f"<td style='white-space:nowrap'>{requirement}</td>"):]
    assert "<b>interrupted</b>" in row[:row.index("</tr>")], f"{requirement} is not 'interrupted' in the matrix"
    return requirement


@pytest.mark.parametrize("number", SIGNALS, ids=lambda s: s.name)
def test_stop_while_waiting_for_a_silent_board(tmp_path: Path, number: signal.Signals) -> None:
    profile = tmp_path / "nanopi-m6.yaml"
    profile.write_text((BOARDS / "nanopi-m6.yaml").read_text().replace("  ddr: 5\n", "  ddr: 60\n"))
    child, report_dir = start_run(tmp_path, "--board", str(profile), "--bench",
                                  str(ROOT / "fixtures" / "benches" / "sim-silent.yaml"), str(GATES))
    wait_for_line(report_dir / "console.log", "[hil] power on (#1)", child)
    assert stop_and_check(child, report_dir, number) == "BOOT-01"


@pytest.mark.parametrize("number", SIGNALS, ids=lambda s: s.name)
def test_stop_at_the_uboot_prompt(tmp_path: Path, number: signal.Signals) -> None:
    bench = tmp_path / "sim-real-time.yaml"
    bench.write_text("name: sim-real-time\nkind: sim\nram_mb: 8192\nsim: {time_scale: 1.0}\n")
    child, report_dir = start_run(tmp_path, "--board", "nanopi-m6", "--bench", str(bench), "-m", "bootloader",
                                  str(GATES))
    wait_for_line(report_dir / "console.log", "[hil] stage u-boot", child)
    assert stop_and_check(child, report_dir, number) in {"BOOT-01", "BOOT-02", "BOOT-03"}


@pytest.mark.parametrize("number", SIGNALS, ids=lambda s: s.name)
def test_stop_while_the_kernel_hangs(tmp_path: Path, number: signal.Signals) -> None:
    child, report_dir = start_run(tmp_path, "--board", "nanopi-m6", "--bench", "sim", "--sim-fault", "hang:kernel",
                                  "-m", "kernel", str(GATES))
    wait_for_line(report_dir / "console.log", "[hil] stage kernel", child)
    time.sleep(0.5)  # into BOOT-04's wait for userspace
    assert stop_and_check(child, report_dir, number) == "BOOT-04"


@pytest.mark.qemu
@pytest.mark.parametrize("number", SIGNALS, ids=lambda s: s.name)
def test_stop_the_qemu_board_while_it_boots(tmp_path: Path, number: signal.Signals) -> None:
    child, report_dir = start_run(tmp_path, "--board", "qemu-arm64", "--bench", "qemu", "-m", "kernel", str(GATES))
    wait_for_line(report_dir / "console.log", "[hil] stage kernel", child, timeout=300)
    assert stop_and_check(child, report_dir, number) == "BOOT-04"
