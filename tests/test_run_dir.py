"""A run owns its record directory: a live run's directory is refused, and each run starts a fresh record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import BOARDS, GATES, ROOT

from harness.errors import ConfigError
from harness.pytest.run_dir import PREVIOUS, claim


def test_a_directory_held_by_a_live_run_is_refused_naming_that_run(tmp_path: Path) -> None:
    first = claim(tmp_path / "report")
    try:
        with pytest.raises(ConfigError, match=rf"is in use by another run \(pid {os.getpid()}, started "):
            claim(tmp_path / "report")
    finally:
        first.release()
    claim(tmp_path / "report").release()  # free again once the first run let go


def test_the_previous_record_is_moved_aside_and_other_files_stay(tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "console.log").write_text("the last run's console\n")
    (report / "report.html").write_text("<html>last</html>")
    (report / "notes.txt").write_text("the user's own file\n")
    run = claim(report)
    run.release()
    assert sorted(run.moved_aside) == ["console.log", "report.html"]
    assert not (report / "console.log").exists() and not (report / "report.html").exists()
    assert (report / PREVIOUS / "console.log").read_text() == "the last run's console\n"
    assert (report / "notes.txt").read_text() == "the user's own file\n"


def test_a_second_run_on_the_same_report_dir_is_refused_while_the_first_runs(pytester: pytest.Pytester,
                                                                               tmp_path: Path) -> None:
    """The issue's reproduction: a run in the background, another one on the same directory."""
    report_dir = tmp_path / "report"
    profile = tmp_path / "nanopi-m6.yaml"
    profile.write_text((BOARDS / "nanopi-m6.yaml").read_text().replace("  ddr: 5\n", "  ddr: 60\n"))
    silent = ROOT / "fixtures" / "benches" / "sim-silent.yaml"
    first = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", str(profile), "--bench", str(silent),
         "--report-dir", str(report_dir), str(GATES)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        log = report_dir / "console.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "power on" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.1)
        second = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim", "--sim-fault", "no-emmc",
            "-m", "kernel", "-k", "emmc", "--report-dir", str(report_dir), str(GATES))
        assert second.ret == 4
        second.stderr.fnmatch_lines([f"*--report-dir {report_dir} is in use by another run (pid {first.pid}*"])
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    alone = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim", "--sim-fault", "no-emmc",
        "-m", "kernel", "-k", "emmc", "--report-dir", str(report_dir), str(GATES))
    alone.assert_outcomes(failed=1)
    assert (report_dir / "console.log").read_text().count("[hil] console opened") == 1, "a fresh record"
    assert "[hil] power on (#1)" in (report_dir / PREVIOUS / "console.log").read_text(), "the first run, aside"
    alone.stdout.fnmatch_lines([f"*previous run's record in {report_dir} was moved to {report_dir / PREVIOUS}*"])
