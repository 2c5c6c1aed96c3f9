"""Offline analysis: parsers and judges on captures in the public formats, and the `hil log analyze` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, read_report

from harness.analysis import analyze, analyze_capture, read_capture, read_runs
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


# -- files that hold several runs ------------------------------------------------------------------
VENDOR = CAPTURES / "rockchip-vendor-lpddr4x.raw"  # LPDDR4X at 2112 MHz
M6_BOOT = CAPTURES / "nanopi-m6-to-maintenance.raw"  # LPDDR5 at 2400 MHz, on to maintenance mode
HIL = [sys.executable, "-m", "harness.cli", "log", "analyze"]


def _console_log_run(capture: Path | None, port: str) -> str:
    """One run as the console used to append it to console.log: opened event, stamped lines, closed event."""
    lines = [f"[  0.000000] [hil] console opened: {port} at 1500000 baud"]
    if capture is not None:
        text = read_capture(capture)
        lines += [f"[{1 + i / 1000:10.6f}] {line}" for i, line in enumerate(text.rstrip("\n").split("\n"))]
    lines.append("[  9.000000] [hil] console closed")
    return "\n".join(lines) + "\n"


def _append_raw_run(raw: Path, idx: Path, capture: Path | None) -> None:
    """One run as the console used to append it to console.raw and console.raw.idx (absolute offsets)."""
    data = capture.read_bytes() if capture is not None else b""
    offset = raw.stat().st_size if raw.exists() else 0
    with idx.open("a") as index:
        index.write("# opened 2026-01-01T10:00:00+0000; columns: byte offset, seconds\n")
        for start in range(0, len(data), 700):  # the reader's chunks
            index.write(f"{offset + start}\t{start / 1000:.6f}\n")
    with raw.open("ab") as f:
        f.write(data)


@pytest.fixture
def three_run_log(tmp_path: Path) -> Path:
    """Run 1 a vendor board, run 2 opened and closed with nothing received, run 3 the M6 to maintenance."""
    path = tmp_path / "console.log"
    path.write_text(_console_log_run(VENDOR, "/dev/pts/1") + _console_log_run(None, "/dev/pts/2")
                    + _console_log_run(M6_BOOT, "/dev/pts/3"))
    return path


@pytest.fixture
def three_run_raw(tmp_path: Path) -> Path:
    raw, idx = tmp_path / "console.raw", tmp_path / "console.raw.idx"
    for capture in (VENDOR, None, M6_BOOT):
        _append_raw_run(raw, idx, capture)
    return raw


@pytest.mark.parametrize("capture", ["three_run_log", "three_run_raw"])
def test_a_file_of_several_runs_is_split_and_the_last_run_judged(capture: str,
                                                                 request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(capture)
    runs = read_runs(path)
    assert len(runs) == 3 and "U-Boot" not in runs[1]
    assert runs[0].strip() == read_capture(VENDOR).strip() and runs[2].strip() == read_capture(M6_BOOT).strip()
    [last] = analyze_capture(path, M6, ram_mb=16384)
    assert (last["runs"], last["run"]) == (3, 3)
    assert last["facts"]["ddr"]["type"] == "LPDDR5" and last["stages"][0] == "ddr"
    assert last["gates"]["BOOT-02"] == "pass", "the vendor board's LPDDR4X in run 1 must not judge run 3"
    [first] = analyze_capture(path, M6, run=1)
    assert first["run"] == 1 and first["facts"]["ddr"]["type"] == "LPDDR4X"


@pytest.mark.parametrize("capture", ["three_run_log", "three_run_raw"])
def test_cli_says_how_many_runs_and_which_it_judged(capture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(capture)
    text = subprocess.run([*HIL, str(path)], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert text.splitlines()[0] == "runs in this file: 3 (judging run 3; --run N for another)"
    assert "ddr.type: LPDDR5" in text and "LPDDR4X" not in text
    chosen = json.loads(subprocess.run([*HIL, str(path), "--run", "1", "--json"], capture_output=True, text=True,
                                       check=True, cwd=ROOT).stdout)
    assert (chosen["runs"], chosen["run"], chosen["facts"]["ddr"]["type"]) == (3, 1, "LPDDR4X")
    every = json.loads(subprocess.run([*HIL, str(path), "--run", "all", "--json"], capture_output=True, text=True,
                                      check=True, cwd=ROOT).stdout)
    assert [(r["runs"], r["run"]) for r in every] == [(3, 1), (3, 2), (3, 3)]
    assert [r["facts"]["ddr"]["type"] for r in every] == ["LPDDR4X", None, "LPDDR5"]
    assert every[1]["stages"] == [], "the run that received nothing has nothing in it"
    beyond = subprocess.run([*HIL, str(path), "--run", "4"], capture_output=True, text=True, cwd=ROOT)
    assert beyond.returncode == 2 and "--run 4: this capture holds 3 runs (1..3)" in beyond.stderr
    zero = subprocess.run([*HIL, str(path), "--run", "0"], capture_output=True, text=True, cwd=ROOT)
    assert zero.returncode == 2 and "give a run number counted from 1, or 'all'" in zero.stderr


def test_a_single_run_file_says_nothing_about_runs(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_text(_console_log_run(M6_BOOT, "/dev/pts/3"))
    done = subprocess.run([*HIL, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.startswith("stages: ddr -> ")
    [result] = analyze_capture(path)
    assert (result["runs"], result["run"]) == (1, 1)
