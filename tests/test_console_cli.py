"""`hil console`: a person's keys reach the board, the board's bytes reach the terminal and the log."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench_doubles import hardware_bench, virtual_board
from pty_peer import LinePeer
from support import ROOT

from harness.sim.relay import LcusRelayDouble


def attach(bench: Path, log_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "console", "--bench", str(bench), "--log-dir",
                             str(log_dir), *extra], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def read_until(child: subprocess.Popen[bytes], text: bytes, timeout: float = 20) -> bytes:
    assert child.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        seen += child.stdout.read1(4096)
    assert text in seen, seen[-2000:]
    return seen


def test_typed_keys_reach_the_board_and_its_answer_the_terminal_and_the_log(tmp_path: Path) -> None:
    peer = LinePeer(lambda line: f"board heard {line!r}\r\n")
    try:
        with LcusRelayDouble(channels=1) as relay:
            bench = tmp_path / "desk.yaml"
            bench.write_text(f"name: desk\nserial: {{url: {peer.path}}}\n"
                             f"power: {{kind: lcus, port: {relay.pty_path}}}\n")
            child = attach(bench, tmp_path / "logs", "--baud", "115200")
            assert child.stdin is not None
            time.sleep(0.5)
            child.stdin.write(b"printenv\n")
            child.stdin.flush()
            read_until(child, b"board heard 'printenv'")
            child.stdin.write(b"\x1d")
            child.stdin.flush()
            assert child.wait(timeout=10) == 0
            assert relay.frames == [], "attaching does not switch the board"
    finally:
        peer.close()
    assert "board heard 'printenv'" in (tmp_path / "logs" / "console.log").read_text()


def test_power_cycle_puts_the_whole_boot_on_screen(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            LcusRelayDouble(channels=1, on_change=lambda _ch, on: board.power(on)) as relay:
        bench = hardware_bench(tmp_path, board, f"{{kind: lcus, port: {relay.pty_path}, off_time_s: 0.1}}")
        child = attach(bench, tmp_path / "logs", "--power-cycle")
        seen = read_until(child, b"entering maintenance service")
        assert seen.index(b"DDR ") < seen.index(b"U-Boot 2017"), "from the first DDR line"
        assert child.stdin is not None
        child.stdin.close()  # end of input quits too
        assert child.wait(timeout=10) == 0
        assert board.power_on_count == 1
    log = (tmp_path / "logs" / "console.log").read_text()
    assert "[hil] step power cycle: pass" in log and "LPDDR5, 2400MHz" in log
