"""Secrets never reach an artifact, end to end: the real plugin, the gates, the virtual board.

A bench carries an Omni join token in its kernel arguments (the kernel prints it in its command
line) and a secret environment variable whose value is on that command line too. Runs that error
in setup, fail, and are interrupted write their record; every file of it, and the terminal, must
hold neither value.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import GATES, ROOT, read_report

TOKEN = "v1:eyJqb2luLXRva2VuIjoibm90LXJlYWwifQ-hil-e2e"
SECRET = "omni-sa-key-hil-e2e-2f9c"


def _bench(tmp_path: Path, *, ram: bool = True) -> Path:
    bench = tmp_path / "sim-omni.yaml"
    bench.write_text(
        "name: sim-omni\nkind: sim\n" + ("ram_mb: 8192\n" if ram else "") +
        "secrets: {omni_key: HIL_E2E_OMNI_KEY}\n"
        f"sim:\n  kernel_args: ['siderolink.api=grpc://omni.example:8090?jointoken={TOKEN}', "
        f"'talos.config=https://omni.example/config?key={SECRET}']\n")
    return bench


def _env() -> dict[str, str]:
    return {**os.environ, "HIL_E2E_OMNI_KEY": SECRET, "PYTHONUNBUFFERED": "1"}


def _assert_nowhere(report_dir: Path, terminal: str, *, booted: bool = True) -> None:
    """Neither value in the terminal or any file of the record (base64 extras of the report decoded)."""
    assert TOKEN not in terminal and SECRET not in terminal
    files = [p for p in report_dir.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in files) and any(p.name == "junit.xml" for p in files)
    for path in files:
        data = path.read_bytes()
        decoded = [base64.b64decode(blob + b"=" * (-len(blob) % 4), validate=False)
                   for blob in re.findall(rb"base64,([A-Za-z0-9+/=]+)", data)]
        for text in (data, *decoded):
            assert TOKEN.encode() not in text and SECRET.encode() not in text, f"a secret in {path}"
    if booted:
        assert "jointoken=***" in (report_dir / "console.log").read_text(), "the token reached the console, masked"


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-l", "--tb=long", "-rA", "--report-dir",
         str(report_dir), f"--junitxml={report_dir / 'junit.xml'}", *args, str(GATES)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    return done, report_dir


def test_a_setup_error_shows_no_secret(tmp_path: Path) -> None:
    done, report_dir = _run(tmp_path, "--board", "nanopi-m6", "--bench", str(_bench(tmp_path, ram=False)),
                            "-m", "bootloader")
    assert "does not say how much RAM this unit has" in done.stdout, done.stdout[-3000:]
    assert "<Bench sim-omni (sim)>" in done.stdout, "the traceback's locals showed the bench, as its name only"
    _assert_nowhere(report_dir, done.stdout + done.stderr, booted=False)


def test_a_failing_run_shows_no_secret(tmp_path: Path) -> None:
    done, report_dir = _run(tmp_path, "--board", "nanopi-m6", "--bench", str(_bench(tmp_path)), "--sim-fault",
                            "no-emmc", "-m", "kernel")
    assert done.returncode == 1 and "mmcblk device on mmc0 (eMMC) not seen" in done.stdout, done.stdout[-3000:]
    boots = [e["text"] for runs in read_report(report_dir / "report.html")["tests"].values() for run in runs
             for e in run.get("extras", []) if e["name"] == "this boot"]
    assert boots and all("jointoken=***" in boot for boot in boots), "the failed gate carried its boot, masked"
    _assert_nowhere(report_dir, done.stdout + done.stderr)


def test_an_interrupted_run_shows_no_secret(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-l", "--tb=long", "--full-trace",
         "--report-dir", str(report_dir), f"--junitxml={report_dir / 'junit.xml'}", "--board", "nanopi-m6",
         "--bench", str(_bench(tmp_path)), "--sim-fault", "hang:kernel", "-m", "kernel", str(GATES)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    log = report_dir / "console.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "[hil] stage kernel" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=60)
    assert child.returncode != 0 and "interrupted by SIGTERM" in output, output[-3000:]
    _assert_nowhere(report_dir, output)


def test_the_bench_file_in_a_usage_error_shows_no_secret(tmp_path: Path) -> None:
    """A bench file with a mistake is quoted by line and key, never by its values."""
    bench = _bench(tmp_path)
    bench.write_text(bench.read_text().replace("kind: sim\n", "kind: sim\ncolour: blue\n"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", str(bench),
         str(GATES)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 4 and "colour" in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr and SECRET not in done.stdout + done.stderr
