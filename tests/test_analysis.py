"""Offline analysis: parsers and judges on captures in the public formats, and the `hil log analyze` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, read_report

from harness.analysis import analyze, read_capture
from harness.config.profile import boards_dir, load_profile

CAPTURES = ROOT / "fixtures" / "captures"
M6 = load_profile("nanopi-m6", boards_dir())


@pytest.mark.parametrize(("capture", "variant"), [
    ("mainline-autoboot.raw", "mainline"),
    ("rockchip-vendor-lpddr4x.raw", "rockchip-vendor"),
    ("radxa-vendor-autoboot.raw", "radxa-vendor"),
])
def test_the_three_autoboot_variants_are_told_apart(capture: str, variant: str) -> None:
    assert analyze(read_capture(CAPTURES / capture))["facts"]["uboot"]["autoboot"] == variant


def test_vendor_capture_facts() -> None:
    facts = analyze(read_capture(CAPTURES / "rockchip-vendor-lpddr4x.raw"))["facts"]
    assert facts["ddr"] == {"type": "LPDDR4X", "mhz": 2112, "size_mb": 4096, "blob_version": "V1.11"}
    assert facts["spl"]["version"] == "2017.09-g1a2b3c4"
    assert facts["uboot"]["version"] == "2017.09-g1a2b3c4"
    assert facts["uboot"]["model"] == "FriendlyElec NanoPi R6S" and facts["uboot"]["dram_gib"] == 4.0


def test_mainline_capture_has_no_ddr_facts_and_they_are_null_not_guessed() -> None:
    result = analyze(read_capture(CAPTURES / "mainline-autoboot.raw"))
    assert result["facts"]["ddr"] == {"type": None, "mhz": None, "size_mb": None, "blob_version": None}
    assert result["stages"] == ["spl", "u-boot", "kernel"] and result["last_stage"] == "kernel"
    assert result["facts"]["uboot"]["dram_gib"] == 15.7
    assert result["facts"]["kernel"]["cmdline"] is None
    assert result["facts"]["talos"]["version"] is None and result["facts"]["talos"]["maintenance"] is False


def test_invalid_bytes_in_the_middle_do_not_hide_anything_after_them() -> None:
    result = analyze(read_capture(CAPTURES / "nanopi-m6-to-maintenance.raw"), M6, ram_mb=16384)
    facts = result["facts"]
    assert result["stages"] == ["ddr", "spl", "u-boot", "kernel", "talos-maintenance"]
    assert facts["ddr"]["blob_version"] == "9fffbe1e78"
    assert (facts["ddr"]["type"], facts["ddr"]["mhz"], facts["ddr"]["size_mb"]) == ("LPDDR5", 2400, 16384)
    assert facts["kernel"]["model"] == "FriendlyElec NanoPi M6"
    assert facts["ethernet"] == [{"device": "fe1c0000.ethernet", "link": "up", "speed": "1Gbps"}]
    assert facts["mmc"] == ["mmcblk0"] and facts["usb"] == ["0781:5583"]
    assert facts["talos"]["version"] == "v1.9.1" and facts["talos"]["addresses"] == ["192.0.2.10"]
    assert result["gates"]["BOOT-02"] == "pass" and result["gates"]["KERN-01"] == "pass"
    assert result["gates"]["BOOT-01"] == "not-seen", "autoboot ran through: no prompt in this capture"


def test_gates_fail_when_the_capture_contradicts_the_profile() -> None:
    gates = analyze(read_capture(CAPTURES / "rockchip-vendor-lpddr4x.raw"), M6)["gates"]
    assert gates["BOOT-02"] == "fail", "LPDDR4X at 2112 MHz is not the M6's LPDDR5 at 2400 MHz"
    assert gates["KERN-04"] == "not-seen"
    unit = analyze(read_capture(CAPTURES / "nanopi-m6-to-maintenance.raw"), M6, ram_mb=8192)["gates"]
    assert unit["BOOT-02"] == "fail", "16 GB of channels on an 8 GB unit"


def test_cli_json_and_missing_file(tmp_path: Path) -> None:
    hil = [sys.executable, "-m", "harness.cli", "log", "analyze"]
    done = subprocess.run([*hil, str(CAPTURES / "nanopi-m6-to-maintenance.raw"), "--board", "nanopi-m6", "--json"],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout)
    assert result["last_stage"] == "talos-maintenance" and result["gates"]["KERN-04"] == "pass"
    missing = subprocess.run([*hil, str(tmp_path / "nope.raw")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "no console capture at" in missing.stderr


def test_analyzing_a_runs_log_reproduces_what_the_run_saw(run_gates) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", "sim", "-m", "bootloader or kernel")
    result.assert_outcomes(passed=8)
    report = read_report(report_dir / "report.html")
    live = {t.split("::")[-1] for t, runs in report["tests"].items() if runs[0]["extras"] is not None}
    assert live, "the run reported its gates"
    for capture in ("console.raw", "console.log"):
        offline = analyze(read_capture(report_dir / capture), M6, ram_mb=8192)
        assert offline["stages"][:4] == ["ddr", "spl", "u-boot", "kernel"], capture
        judged = {g: v for g, v in offline["gates"].items() if g != "OVRL-04"}
        assert set(judged.values()) == {"pass"}, (capture, judged)
        assert offline["facts"]["kernel"]["model"] == "FriendlyElec NanoPi M6"
