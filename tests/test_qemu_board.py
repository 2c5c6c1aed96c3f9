"""The harness against real firmware: Debian's U-Boot and Linux in QEMU (software emulation).

If the console engine, the U-Boot driver, the stage machine, the shell driver and the gates pass
against software nobody here wrote, they work for the right reasons. Each boot takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import GATES, ROOT, read_report

from harness.cache import cache_dir
from harness.config.bench import builtin_bench
from harness.config.profile import boards_dir, load_profile
from harness.console.console import Console
from harness.errors import BenchError, ConsoleTimeout
from harness.qemu.assets import build_assets
from harness.qemu.machine import QemuMachine, free_port
from harness.rig import bring_up
from harness.session import BringUpSession
from harness.transports.children import is_running

QEMU = load_profile("qemu-arm64", boards_dir())


@pytest.fixture
def session(tmp_path: Path) -> Iterator[BringUpSession]:
    with bring_up(QEMU, builtin_bench("qemu"), tmp_path) as live:
        yield live


def test_gate_suite_passes_and_the_report_shows_the_real_boot(run_gates) -> None:
    result, report_dir = run_gates("--board", "qemu-arm64", "--bench", "qemu", "-rs")
    result.assert_outcomes(passed=6, skipped=2)
    result.stdout.fnmatch_lines([
        "*gate verdicts: 6 pass, 2 not applicable*",
        "*not applicable to qemu-arm64: QEMU has no DDR init to judge*",
        "*not applicable to qemu-arm64: Debian's qemu_arm64 U-Boot has no MMC driver*",
    ])
    report = read_report(report_dir / "report.html")
    assert report["environment"]["Hardware"] == "QEMU board (real U-Boot and Linux)"
    assert "Power-ons:</b> 1" in report["html"]
    timeline = report["html"][report["html"].index("Boot timeline"):]
    assert "<td>u-boot</td>" in timeline and "<td>kernel</td>" in timeline
    assert "Booting Linux on physical CPU" in timeline
    log = (report_dir / "console.log").read_text()
    assert "Machine model: QEMU HIL arm64" in log, "the model U-Boot set with fdt reached the kernel"


def test_broken_initramfs_fails_boot04_quoting_the_panic(run_gates) -> None:
    bench = ROOT / "fixtures" / "benches" / "qemu-broken-initramfs.yaml"
    result, _ = run_gates("--board", "qemu-arm64", "--bench", str(bench),
                          str(GATES / "test_kernel.py::test_kernel_boots_to_console"), gates="")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*kernel-panic at stage kernel*Kernel panic - not syncing: No working init found*"])


def test_real_uboot_commands_report_their_exit_status(session: BringUpSession) -> None:
    uboot = session.uboot_prompt()
    version = uboot.exec("version")
    assert version.ok and version.output.startswith("U-Boot 20"), version
    assert uboot.exec("virtio info").ok
    missing = uboot.exec("printenv hil_never_set")
    assert missing.status == 1 and "not defined" in missing.output
    unknown = uboot.exec("mmc list")
    assert unknown.status == 1 and "Unknown command 'mmc'" in unknown.output, "this U-Boot has no MMC driver"
    assert uboot.exec("setenv hil_probe 42").ok
    assert uboot.exec("printenv hil_probe").output == "hil_probe=42"


def test_shell_driver_against_busybox(session: BringUpSession) -> None:
    shell = session.shell()
    assert shell.exec("true").status == 0
    assert shell.exec("false").status == 1
    missing = shell.exec("ls /hil-missing")
    assert missing.status != 0 and "No such file" in missing.output
    assert shell.exec("echo one; echo two").output == "one\ntwo"
    long_line = "x" * 300
    assert shell.exec(f"echo {long_line}").output == long_line, "a line past 80 columns must not be re-wrapped"
    noisy = shell.exec("echo 7 > /proc/sys/kernel/printk; for i in 1 2 3; do echo hil-kmsg-$i > /dev/kmsg; "
                      "echo out$i; done; echo 1 > /proc/sys/kernel/printk")
    assert noisy.ok and noisy.output == "out1\nout2\nout3", "kernel lines interleaved with the output are dropped"
    assert "hil-kmsg-2" in session.console.log.log_path.read_text(), "the kernel lines did reach the console"


def test_power_cycle_over_qmp_boots_again(session: BringUpSession) -> None:
    session.uboot_prompt()
    assert session.power.get() is True
    session.power_off()
    assert session.power.get() is False
    session.uboot_prompt()
    assert session.power_ons == 2
    assert [e.stage for e in session.timeline] == ["u-boot", "u-boot"]


def test_a_hanging_guest_is_a_stage_timeout_with_the_console_tail(tmp_path: Path) -> None:
    quick = QEMU.model_copy(update={"timeouts": {"u-boot": 30, "kernel": 3}})
    with bring_up(quick, builtin_bench("qemu"), tmp_path) as live:
        live.uboot_prompt()
        live.console.sendline("boot")
        live.power.machine.qmp.execute("stop")  # the guest freezes right after U-Boot starts booting
        assert live.stage == "u-boot"  # what the strategy believes after `boot` was typed
        with pytest.raises(ConsoleTimeout) as caught:
            live.stages.watch("kernel", interrupt=False)
    assert "stage kernel not reached" in str(caught.value) and caught.value.stage == "u-boot"
    assert any("boot" in line for line in caught.value.tail), "the console tail comes with the timeout"


def test_qemu_that_cannot_start_is_a_bench_error(tmp_path: Path) -> None:
    assets = build_assets(cache_dir("qemu"), log=lambda _line: None)
    broken = dataclasses.replace(assets, boot_disk=tmp_path / "missing.img")
    with pytest.raises(BenchError) as caught:
        QemuMachine(broken, tmp_path / "qemu").start()
    assert "QEMU did not start" in str(caught.value) and "missing.img" in str(caught.value)


def test_a_console_socket_that_never_appears_is_a_bench_error(tmp_path: Path) -> None:
    url = f"socket://127.0.0.1:{free_port()}"
    with pytest.raises(BenchError) as caught:
        Console(url, 115200, tmp_path).open()
    assert url in str(caught.value) and "refused" in str(caught.value).lower()


# A harness in miniature: starts the QEMU board, reports QEMU's pid, and idles until it is killed.
HARNESS_THAT_GETS_KILLED = """
import sys, time
from pathlib import Path
from harness.qemu.assets import build_assets
from harness.qemu.machine import QemuMachine
from harness.cache import cache_dir
machine = QemuMachine(build_assets(cache_dir("qemu"), log=lambda _line: None), Path(sys.argv[1])).start()
print(machine.pid, flush=True)
time.sleep(120)
"""


def test_qemu_dies_with_a_harness_that_is_sigkilled(tmp_path: Path) -> None:
    """No cleanup code runs on SIGKILL; only PR_SET_PDEATHSIG keeps QEMU from holding ports and memory."""
    build_assets(cache_dir("qemu"), log=lambda _line: None)  # a cache hit in the child, not a build
    harness = subprocess.Popen([sys.executable, "-c", HARNESS_THAT_GETS_KILLED, str(tmp_path / "qemu")],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert harness.stdout is not None
    line = harness.stdout.readline()
    assert line.strip().isdigit(), f"the harness did not start QEMU (exit {harness.wait()})"
    qemu = int(line)
    try:
        assert is_running(qemu) and b"qemu-system-aarch64" in Path(f"/proc/{qemu}/cmdline").read_bytes()
        harness.kill()
        harness.wait()
        deadline = time.monotonic() + 5
        while is_running(qemu) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_running(qemu), "QEMU outlived the harness that started it"
    finally:
        if is_running(qemu):
            os.kill(qemu, signal.SIGKILL)
