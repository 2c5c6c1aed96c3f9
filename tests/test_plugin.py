"""The plugin end to end: a child pytest runs the gates against the virtual board, as users do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import BOARDS, GATES, ROOT, read_report

M6 = (BOARDS / "nanopi-m6.yaml").read_text()


def test_main_job_passes_boot01_boot02_and_writes_the_report(run_gates) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", "sim", "-m", "bootloader")
    result.assert_outcomes(passed=3)
    report = read_report(report_dir / "report.html")
    assert report["environment"]["Board"].startswith("nanopi-m6")
    assert report["environment"]["Hardware"] == "virtual board"
    assert report["environment"]["Bench"] == "sim" and report["environment"]["Bench file"] == "built in"
    ddr = report["tests"]["harness/gates/test_bootloader.py::test_ddr_init"][0]
    excerpts = [e["text"] for e in ddr["extras"] if e["name"] == "console"]
    boot01 = report["tests"]["harness/gates/test_bootloader.py::test_uboot_prompt_after_power_on"][0]
    first = next(e["text"] for e in boot01["extras"] if e["name"] == "console")
    assert "LPDDR5, 2400MHz" in first and "=> version" in first, "BOOT-01's excerpt is the boot it drove"
    assert excerpts == [] or "power on" not in excerpts[0], "BOOT-02 shares BOOT-01's boot"
    assert "Power-ons:</b> 1" in report["html"]
    assert "Boot timeline" in report["html"]
    steps = report["html"][report["html"].index("<b>Steps</b>"):]
    assert "power on" in steps and "u-boot command" in steps and "expect stage" in steps, "the steps, from events"
    events = [json.loads(line) for line in (report_dir / "events.jsonl").read_text().splitlines()]
    assert {"power on", "expect stage", "u-boot command"} <= {e["name"] for e in events}
    log = (report_dir / "console.log").read_text()
    assert "channel[3] BW=16" in log and "[hil] power on (#1)" in log
    assert (report_dir / "console.raw").read_bytes().count(b"\r\n") > 50, "raw log keeps the bytes as sent"


def test_gates_without_board_are_skipped_with_one_clear_reason(run_gates) -> None:
    result, _ = run_gates("-rs")
    result.assert_outcomes(skipped=8)
    result.stdout.fnmatch_lines(
        ["*8 gate(s) skipped: needs a board: pass --board NAME (known: nanopi-m6, qemu-arm64, rpi5-cm5*"])


def test_unknown_board_is_a_usage_error_listing_boards(run_gates) -> None:
    result, _ = run_gates("--board", "nanopi-m7")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown board 'nanopi-m7'*Known boards: nanopi-m6, qemu-arm64, rpi5-cm5*"])


def test_invalid_board_yaml_stops_the_run_naming_file_line_and_key(run_gates, tmp_path: Path) -> None:
    profile = tmp_path / "nanopi-m6.yaml"
    profile.write_text(M6.replace("ttyS2, baud: 1500000}", "ttyS2, baud: fast}"))
    result, _ = run_gates("--board", str(profile))
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{profile}:*: key 'console.kernel.baud'*integer*"])


def test_wrong_ddr_clock_fails_boot02_with_the_line_seen(run_gates, tmp_path: Path) -> None:
    transcript = (ROOT / "harness" / "sim" / "transcripts" / "nanopi-m6.yaml").read_text()
    (tmp_path / "slow-ddr.yaml").write_text(transcript.replace("ddr_mhz: 2400", "ddr_mhz: 2112"))
    bench = tmp_path / "sim-slow-ddr.yaml"
    bench.write_text("name: sim-slow-ddr\nkind: sim\nram_mb: 8192\nsim: {transcript: slow-ddr.yaml}\n")
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", str(bench), "-m", "bootloader")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*DDR init reports 'LPDDR5, 2112MHz'; the profile expects LPDDR5, 2400MHz*"])
    assert read_report(report_dir / "report.html")["environment"]["Bench file"] == str(bench.resolve())


def test_ram_size_is_checked_against_the_bench_unit(run_gates, tmp_path: Path) -> None:
    bench = tmp_path / "sim-16g.yaml"
    bench.write_text("name: sim-16g\nkind: sim\nram_mb: 16384\n")
    result, _ = run_gates("--board", "nanopi-m6", "--bench", str(bench), "-m", "bootloader")
    result.assert_outcomes(passed=3)
    bench.write_text("name: sim-16g\nkind: sim\n")
    result, _ = run_gates("--board", "nanopi-m6", "--bench", str(bench), "-m", "bootloader")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*does not say how much RAM this unit has: add ram_mb*"])


def _quick_profile(tmp_path: Path, ddr_timeout: int) -> Path:
    profile = tmp_path / "nanopi-m6.yaml"
    profile.write_text(M6.replace("  ddr: 5\n", f"  ddr: {ddr_timeout}\n"))
    return profile


def test_a_silent_board_is_a_bench_error_naming_the_expected_stage(run_gates, tmp_path: Path) -> None:
    silent = ROOT / "fixtures" / "benches" / "sim-silent.yaml"
    result, report_dir = run_gates("--board", str(_quick_profile(tmp_path, 1)), "--bench", str(silent), "-x")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*nothing at all on the console*expected stage ddr*check the board's power*"])
    assert "[hil] power on (#1)" in (report_dir / "console.log").read_text()


def test_ctrl_c_mid_run_still_writes_console_log_and_report(tmp_path: Path) -> None:
    silent = ROOT / "fixtures" / "benches" / "sim-silent.yaml"
    report_dir = tmp_path / "report"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", str(_quick_profile(tmp_path, 60)),
         "--bench", str(silent), "--report-dir", str(report_dir), str(GATES)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Set explicitly: a suite started in the background or under nohup passes SIGINT down ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = report_dir / "console.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "power on" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 2, output.decode()  # pytest's "interrupted"
    assert b"interrupted by SIGINT" in output
    assert "[hil] power on (#1)" in log.read_text()
    assert "[hil] console closed" in log.read_text(), "the session was torn down cleanly"
    assert (report_dir / "report.html").is_file(), "pytest-html wrote the report of the interrupted run"


def test_k_selects_a_gate_by_its_requirement_id_and_junit_carries_it(run_gates, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result, _ = run_gates("--board", "nanopi-m6", "--bench", "sim", "-k", "BOOT-03", f"--junitxml={junit}")
    result.assert_outcomes(passed=1)
    case = next(ET.parse(junit).getroot().iter("testcase"))
    assert case.get("name") == "test_uboot_reads_the_microsd"
    assert {(p.get("name"), p.get("value")) for p in case.iter("property")} == {
        ("requirement", "BOOT-03"), ("phase", "bootloader")}


def test_last_failed_reruns_only_the_gate_that_failed(pytester: pytest.Pytester) -> None:
    """--lf works: the cache provider is on (a no-op --lf would silently rerun everything)."""
    args = ("--board", "nanopi-m6", "--bench", "sim", "--sim-fault", "no-usb", "-m", "kernel", str(GATES))
    first = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "first"), *args)
    first.assert_outcomes(passed=4, failed=1)
    again = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "again"), "--lf", *args)
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*run-last-failure: rerun previous 1 failure*"])


def test_a_projects_own_profile_overrides_the_shipped_one_and_the_run_says_which(pytester: pytest.Pytester) -> None:
    boards = pytester.mkdir("boards")
    (boards / "nanopi-m6.yaml").write_text(M6.replace("FriendlyELEC NanoPi M6 (RK3588S, LPDDR5)", "our M6 rev B"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim",
                                           "-m", "bootloader", "--report-dir", "out")
    result.assert_outcomes(passed=3)
    used = boards / "nanopi-m6.yaml"
    result.stdout.fnmatch_lines([f"board profile: {used} (overrides the shipped one of that name)"])
    report = read_report(pytester.path / "out" / "report.html")
    assert report["environment"]["Board profile file"] == str(boards / "nanopi-m6.yaml")
    assert report["environment"]["Board"].startswith("nanopi-m6 (our M6 rev B)")


def test_users_own_gates_run_beside_the_shipped_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_our_gate="""
        from harness.gates.registry import gate

        @gate("KERN-04")
        def test_our_model_check(booted, board_profile):
            assert "FriendlyElec NanoPi M6" in booted.boot_capture()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim",
                                           "--shipped-gates", "-m", "kernel", "--report-dir", "out",
                                           "test_our_gate.py")
    result.assert_outcomes(passed=6)  # the 5 shipped kernel gates and ours, on one boot
    result.stdout.fnmatch_lines(["*gate verdicts: 6 pass*", "*power-ons: 1*"])


def test_a_cache_directory_that_cannot_be_written_is_named_with_its_variable(run_gates,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", "/proc/hil-cache")  # refused even to root
    result, _ = run_gates("--board", "nanopi-m6", "--bench", "sim", "-m", "bootloader")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*the cache directory /proc/hil-cache/sim cannot be written*set HIL_CACHE_DIR*"])
