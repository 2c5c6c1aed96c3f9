"""The user's mistakes are usage errors before the first power-on: one message, no traceback, exit 4.

Each case runs the gates in a child pytest as a user types them; none may power the board on
(no console log is written), blame the bench, or move the previous run's record aside.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import GATES

USAGE_ERROR = 4


def _assert_usage_error(result: pytest.RunResult, report_dir: Path, *messages: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == USAGE_ERROR, output
    for message in messages:
        assert message in output, output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    assert not (report_dir / "console.log").exists(), "a usage error must not power the board on"


def test_missing_image_is_a_usage_error(run_gates, tmp_path: Path) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--image", str(tmp_path / "nope.raw"))
    _assert_usage_error(result, report_dir, f"--image {tmp_path / 'nope.raw'}: no such file")


def test_empty_image_is_a_usage_error(run_gates, tmp_path: Path) -> None:
    (tmp_path / "empty.raw").touch()
    result, report_dir = run_gates("--board", "nanopi-m6", "--image", str(tmp_path / "empty.raw"))
    _assert_usage_error(result, report_dir, "is empty (0 bytes)")


def test_image_that_is_a_directory_is_a_usage_error(run_gates, tmp_path: Path) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--image", str(tmp_path))
    _assert_usage_error(result, report_dir, "is a directory")


def test_fault_the_boards_transcript_does_not_define_is_a_usage_error(run_gates) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--sim-fault", "kernel-console-other-uart")
    _assert_usage_error(result, report_dir, "kernel-console-other-uart", "nanopi-m6")


def test_the_qemu_profile_on_the_virtual_bench_is_a_usage_error(run_gates) -> None:
    result, report_dir = run_gates("--board", "qemu-arm64", "--bench", "sim")
    _assert_usage_error(result, report_dir, "--bench qemu")


def test_a_real_board_on_the_qemu_bench_is_a_usage_error(run_gates) -> None:
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", "qemu")
    _assert_usage_error(result, report_dir, "--bench qemu runs the QEMU board only")


def test_bench_wired_for_another_board_is_a_usage_error(run_gates, tmp_path: Path) -> None:
    bench = tmp_path / "rpi-desk.yaml"
    bench.write_text("name: rpi-desk\nkind: sim\nboard: rpi5-cm5\n")
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", str(bench))
    _assert_usage_error(result, report_dir, "bench 'rpi-desk' is wired for board 'rpi5-cm5', not 'nanopi-m6'")


@pytest.mark.parametrize(("power", "message"), [
    ("", "has no power section"),
    ("power: {kind: carrier-pigeon, port: loft}\n", "power kind 'carrier-pigeon' has no driver"),
])
def test_hardware_bench_without_a_usable_power_switch_is_a_usage_error(run_gates, tmp_path: Path, power: str,
                                                                       message: str) -> None:
    bench = tmp_path / "desk.yaml"
    bench.write_text(f"name: desk\nserial: {{url: /dev/ttyUSB0}}\nram_mb: 8192\n{power}")
    result, report_dir = run_gates("--board", "nanopi-m6", "--bench", str(bench))
    _assert_usage_error(result, report_dir, message)


def test_report_dir_that_is_a_file_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.write_text("not a directory")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--board", "nanopi-m6", "--report-dir",
                                           str(target), str(GATES))
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--report-dir {target} is a file, not a directory*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_report_dir_that_cannot_be_written_is_a_usage_error(pytester: pytest.Pytester) -> None:
    # The tests may run as root, for whom permission bits do not stop a write: /proc refuses everyone.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--board", "nanopi-m6", "--report-dir",
                                           "/proc/hil-report", str(GATES))
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(["*--report-dir /proc/hil-report cannot be written*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
