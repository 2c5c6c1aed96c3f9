"""Each injected fault makes exactly the right gates fail (or error), with their stage and reason.

The gate suite runs in a child pytest against the virtual board, as a user runs it; the terminal
summary and the JUnit XML are read back, so this checks what a person and a CI system see.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import BOARDS, GATES, ROOT

from harness.gates.registry import BY_ID, shipped_gates

GATES_SHIPPED = shipped_gates()
ALL = {g for g in GATES_SHIPPED if BY_ID[g].phase in ("bootloader", "kernel")}
KERNEL = {g for g in ALL if BY_ID[g].phase == "kernel"}


def _profile(tmp_path: Path) -> Path:
    """The NanoPi M6 profile with short stage timeouts, so hangs are reported quickly."""
    text = (BOARDS / "nanopi-m6.yaml").read_text()
    for stage, seconds in (("ddr", 5), ("spl", 10), ("u-boot", 15), ("kernel", 60), ("talos-maintenance", 180)):
        text = text.replace(f"\n  {stage}: {seconds}\n", f"\n  {stage}: {max(1, seconds // 10)}\n")
    path = tmp_path / "nanopi-m6.yaml"
    path.write_text(text)
    return path


def _verdicts(junit: Path) -> dict[str, tuple[str, str]]:
    """requirement id -> (verdict, message) from JUnit XML; the id is the testcase's `requirement` property."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        gate = properties["requirement"]
        assert any(name.endswith(f".{case.get('name')}") for name in GATES_SHIPPED[gate]), (gate, case.get("name"))
        failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
        if failure is not None:
            found[gate] = ("fail", failure.get("message", ""))
        elif error is not None:
            found[gate] = ("error", error.get("message", ""))
        elif skipped is not None:
            message = skipped.get("message", "")
            found[gate] = ("blocked" if message.startswith("blocked: ") else "skipped", message)
        else:
            found[gate] = ("pass", "")
    return found


def _run(pytester: pytest.Pytester, tmp_path: Path, *args: str, board: str | None = None,
         marks: str = "bootloader or kernel") -> tuple[pytest.RunResult, dict[str, tuple[str, str]]]:
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", board or str(_profile(tmp_path)), *args,
        "--report-dir", str(tmp_path / "report"), f"--junitxml={junit}", "-m", marks,
        str(GATES), timeout=300)
    return result, _verdicts(junit)


QUOTE = "not waited for, this boot already stopped in gate"


@pytest.mark.parametrize(("fault", "failing", "blocked", "reason"), [
    ("ddr-wrong-clock", {"BOOT-02"}, set(), "LPDDR5, 2112MHz"),
    ("no-eth-link", {"KERN-01"}, set(), "link up on fe1c0000.ethernet not seen"),
    ("no-emmc", {"KERN-02"}, set(), "mmcblk device on mmc0 (eMMC) not seen"),
    ("no-usb", {"KERN-03"}, set(), "a USB device (not a root hub) enumerating not seen"),
    # Lines printed before the panic or the hang still count: the eMMC, USB and model were seen. The
    # Ethernet link comes up only once Talos configures it, so KERN-01 is blocked, not failed.
    ("kernel-panic", {"BOOT-04"}, {"KERN-01"}, "Kernel panic - not syncing"),
    ("hang:kernel", {"BOOT-04", "KERN-02", "KERN-03"}, {"KERN-01"}, "the console went quiet"),
    ("ddr-fail", ALL, set(), "ddr-training-failed at stage ddr"),
    ("talos-no-maintenance", set(), {"KERN-01"}, "[talos] boot sequence: failed"),
    ("serial-noise", set(), set(), ""),
    ("uart-reenumerate", set(), set(), ""),
])
def test_fault_fails_exactly_its_gates(pytester: pytest.Pytester, tmp_path: Path, fault: str, failing: set[str],
                                       blocked: set[str], reason: str) -> None:
    result, verdicts = _run(pytester, tmp_path, "--bench", "sim", "--sim-fault", fault)
    assert set(verdicts) == ALL
    assert {g for g, (v, _) in verdicts.items() if v == "fail"} == failing, verdicts
    assert {g for g, (v, _) in verdicts.items() if v == "blocked"} == blocked, verdicts
    assert {g for g, (v, _) in verdicts.items() if v == "pass"} == ALL - failing - blocked, verdicts
    for gate in failing | blocked:
        assert reason in verdicts[gate][1], f"{fault}: {gate} says {verdicts[gate][1]!r}"
    assert (result.ret == 0) == (not failing and not blocked), "a blocked gate is not a green run"
    result.stdout.fnmatch_lines(["*power-ons: 1*"])  # one cause, one boot: no gate powered on again


def test_gates_after_a_stopped_boot_quote_the_first_failure_instead_of_waiting(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """One verdict per cause: the first gate pays the timeout, the others fail at once quoting it."""
    _, verdicts = _run(pytester, tmp_path, "--bench", "sim", "--sim-fault", "hang:kernel")
    assert "the console went quiet" in verdicts["BOOT-04"][1] and QUOTE not in verdicts["BOOT-04"][1]
    for gate in ("KERN-02", "KERN-03"):
        assert f"{QUOTE} BOOT-04: the console went quiet" in verdicts[gate][1], verdicts[gate]
    durations = {case.get("name"): float(case.get("time", "0"))
                 for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert durations["test_emmc_detected"] < 1.0 and durations["test_usb_host_enumerates_a_device"] < 1.0, durations


def test_a_silence_the_profile_names_is_reported_by_name_in_every_kernel_gate(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """RPi 5 / CM5: the kernel console on another UART is a named finding, not four generic 'not seen'."""
    profile = tmp_path / "rpi5-cm5.yaml"
    profile.write_text((BOARDS / "rpi5-cm5.yaml").read_text().replace("  kernel: 60\n", "  kernel: 10\n"))
    result, verdicts = _run(pytester, tmp_path, "--bench", "sim", "--sim-fault", "kernel-console-other-uart",
                            board=str(profile), marks="kernel")
    assert set(verdicts) == KERNEL
    assert verdicts.pop("KERN-02")[0] == "skipped", "a Raspberry Pi 5 has no eMMC: not applicable"
    for gate, (_, message) in verdicts.items():
        assert "console silent after 'EFI stub: Exiting boot services'" in message, (gate, message)
    assert {gate for gate, (verdict, _) in verdicts.items() if verdict == "blocked"} == {"KERN-01"}
    assert result.ret == 1


def test_an_image_without_a_loader_is_the_board_in_maskrom_not_a_wiring_error(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1 << 20))
    _, verdicts = _run(pytester, tmp_path, "--bench", "sim", "--image", str(blank), marks="bootloader")
    assert {v for v, _ in verdicts.values()} == {"fail"}, verdicts
    assert all("no loader found on the SD or eMMC image: the board is in MaskROM" in m for _, m in verdicts.values())


def test_a_silent_board_errors_every_gate_as_a_bench_fault(pytester: pytest.Pytester, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", str(_profile(tmp_path)), "--bench",
        str(ROOT / "fixtures" / "benches" / "sim-silent.yaml"), f"--junitxml={junit}", "-m", "bootloader",
        "--report-dir", str(tmp_path / "report"), str(GATES), timeout=300)
    verdicts = _verdicts(junit)
    assert {v for v, _ in verdicts.values()} == {"error"}, verdicts
    assert all("check the board's power" in message for _, message in verdicts.values())
    result.stdout.fnmatch_lines(["*gate verdicts: 3 error (bench)*", "*power-ons: 1*", "*3 error*"])


def test_recovery_power_cycles_after_a_failed_stage(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """After kernel gates fail, a bootloader gate that runs later gets a fresh power-on, not a dead board."""
    junit = tmp_path / "junit.xml"
    gates = GATES
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--board", str(_profile(tmp_path)), "--bench", "sim", "--sim-fault", "kernel-panic",
        f"--junitxml={junit}", "--report-dir", str(tmp_path / "report"),
        str(gates / "test_kernel.py::test_kernel_boots_to_console"),
        str(gates / "test_bootloader.py::test_uboot_prompt_after_power_on"), timeout=300)
    verdicts = _verdicts(junit)
    assert verdicts == {"BOOT-04": verdicts["BOOT-04"], "BOOT-01": ("pass", "")}
    assert verdicts["BOOT-04"][0] == "fail"
    result.stdout.fnmatch_lines(["*power-ons: 2*"])
