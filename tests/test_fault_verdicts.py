"""Each injected fault makes exactly the right gates fail (or error), with their stage and reason.

The gate suite runs in a child pytest against the virtual board, as a user runs it; the terminal
summary and the JUnit XML are read back, so this checks what a person and a CI system see.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import ROOT

ALL = {"BOOT-01", "BOOT-02", "BOOT-03", "BOOT-04", "KERN-01", "KERN-02", "KERN-03", "KERN-04"}
KERNEL = {"BOOT-04", "KERN-01", "KERN-02", "KERN-03", "KERN-04"}
GATE_IDS = {
    "test_uboot_prompt_after_power_on": "BOOT-01", "test_ddr_init": "BOOT-02",
    "test_uboot_reads_the_microsd": "BOOT-03", "test_kernel_boots_to_console": "BOOT-04",
    "test_ethernet_link_up": "KERN-01", "test_emmc_detected": "KERN-02",
    "test_usb_host_enumerates_a_device": "KERN-03", "test_device_tree_identifies_the_board": "KERN-04",
}


def _profile(tmp_path: Path) -> Path:
    """The NanoPi M6 profile with short stage timeouts, so hangs are reported quickly."""
    text = (ROOT / "boards" / "nanopi-m6.yaml").read_text()
    for stage, seconds in (("ddr", 5), ("spl", 10), ("u-boot", 15), ("kernel", 60), ("talos-maintenance", 180)):
        text = text.replace(f"\n  {stage}: {seconds}\n", f"\n  {stage}: {max(1, seconds // 10)}\n")
    path = tmp_path / "nanopi-m6.yaml"
    path.write_text(text)
    return path


def _verdicts(junit: Path) -> dict[str, tuple[str, str]]:
    """requirement id -> (verdict, message) from JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        gate = GATE_IDS[case.get("name", "")]
        failure, error = case.find("failure"), case.find("error")
        if failure is not None:
            found[gate] = ("fail", failure.get("message", ""))
        elif error is not None:
            found[gate] = ("error", error.get("message", ""))
        else:
            found[gate] = ("pass", "")
    return found


@pytest.mark.parametrize(("fault", "failing", "reason"), [
    ("ddr-wrong-clock", {"BOOT-02"}, "LPDDR5, 2112MHz"),
    ("no-eth-link", {"KERN-01"}, "link up on fe1c0000.ethernet not seen"),
    ("no-emmc", {"KERN-02"}, "mmcblk device on mmc0 (eMMC) not seen"),
    ("no-usb", {"KERN-03"}, "a USB device (not a root hub) enumerating not seen"),
    # Lines printed before the panic or the hang still count: the eMMC, USB and model were seen.
    ("kernel-panic", {"BOOT-04", "KERN-01"}, "kernel-panic at stage kernel"),
    ("hang:kernel", {"BOOT-04", "KERN-01", "KERN-02", "KERN-03"}, "not seen: expected"),
    ("ddr-fail", ALL, "ddr-training-failed at stage ddr"),
    ("serial-noise", set(), ""),
    ("uart-reenumerate", set(), ""),
])
def test_fault_fails_exactly_its_gates(pytester: pytest.Pytester, tmp_path: Path, fault: str, failing: set[str],
                                       reason: str) -> None:
    junit = tmp_path / "junit.xml"
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", str(_profile(tmp_path)), "--bench", "sim", "--sim-fault", fault,
        "--report-dir", str(tmp_path / "report"), f"--junitxml={junit}", "-m", "bootloader or kernel",
        str(ROOT / "tests" / "gates"), timeout=300)
    verdicts = _verdicts(junit)
    assert set(verdicts) == ALL
    assert {g for g, (v, _) in verdicts.items() if v != "pass"} == failing, verdicts
    for gate in failing:
        verdict, message = verdicts[gate]
        assert verdict == "fail", f"{fault}: {gate} must fail (the board's fault), not {verdict}: {message}"
        assert reason in message, f"{fault}: {gate} says {message!r}"


def test_a_silent_board_errors_every_gate_as_a_bench_fault(pytester: pytest.Pytester, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", str(_profile(tmp_path)), "--bench",
        str(ROOT / "fixtures" / "benches" / "sim-silent.yaml"), f"--junitxml={junit}", "-m", "bootloader",
        "--report-dir", str(tmp_path / "report"), str(ROOT / "tests" / "gates"), timeout=300)
    verdicts = _verdicts(junit)
    assert {v for v, _ in verdicts.values()} == {"error"}, verdicts
    assert all("check the board's power" in message for _, message in verdicts.values())
    result.stdout.fnmatch_lines(["*gate verdicts: 3 error (bench)*", "*3 error*"])


def test_recovery_power_cycles_after_a_failed_stage(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """After kernel gates fail, a bootloader gate that runs later gets a fresh power-on, not a dead board."""
    junit = tmp_path / "junit.xml"
    gates = ROOT / "tests" / "gates"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", str(_profile(tmp_path)), "--bench", "sim", "--sim-fault", "kernel-panic",
        f"--junitxml={junit}", "--report-dir", str(tmp_path / "report"),
        str(gates / "test_kernel.py::test_kernel_boots_to_console"),
        str(gates / "test_bootloader.py::test_uboot_prompt_after_power_on"), timeout=300)
    verdicts = _verdicts(junit)
    assert verdicts == {"BOOT-04": verdicts["BOOT-04"], "BOOT-01": ("pass", "")}
    assert verdicts["BOOT-04"][0] == "fail"
    result.stdout.fnmatch_lines(["*power-ons: 2*"])
