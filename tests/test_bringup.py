"""The bring-up parts on their own: the stage strategy's broken latch and the boot capture's first failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sim_support import fast_profile, sim_bench

from harness.console.console import Console
from harness.errors import BoardFailure, ConsoleTimeout
from harness.image.synthetic import make_talos_like_image
from harness.rig import bring_up
from harness.session import BringUpSession
from harness.sim.board import VirtualBoard
from harness.sim.transcript import load_transcript


def test_a_failed_drive_latches_the_strategy_broken_until_a_power_cycle(tmp_path: Path) -> None:
    with bring_up(fast_profile("nanopi-m6"), sim_bench(faults=["hang:talos"]), tmp_path) as session:
        with pytest.raises(ConsoleTimeout):
            session.reach("talos-maintenance")
        assert session.stage == "kernel" and session.stages.broken
        assert not session.stages.at("kernel"), "a broken boot is not 'at' any stage, however far it got"
        session.uboot_prompt()  # the stopped boot got past U-Boot: a new boot is the way out
        assert session.power_ons == 2 and not session.stages.broken and session.stages.at("u-boot")


def test_the_first_failure_of_a_boot_is_kept_and_quoted_and_a_power_on_forgets_it(tmp_path: Path) -> None:
    with bring_up(fast_profile("nanopi-m6"), sim_bench(faults=["hang:kernel"]), tmp_path) as session:
        session.current_gate = "BOOT-04"
        session.reach("kernel")
        with pytest.raises(ConsoleTimeout):
            session.evidence("Run /init as init process", stage="kernel", what="userspace", timeout=2)
        stop = session.capture.stop
        assert stop is not None and stop.gate == "BOOT-04" and stop.summary.startswith("the console went quiet")
        session.current_gate = "KERN-02"
        with pytest.raises(BoardFailure, match="not waited for, this boot already stopped in gate BOOT-04"):
            session.evidence("mmcblk0: mmc0:", stage="kernel", what="the eMMC", timeout=30)
        session.uboot_prompt()
        assert session.capture.stop is None, "a new boot starts with no failure"


class SlowPlug:
    """A switch like an HTTP plug that reads its state back: the board is on long before `set` returns."""

    description = "slow plug"

    def __init__(self, board: VirtualBoard, answer_s: float) -> None:
        self.board, self.answer_s, self.state = board, answer_s, False

    def set(self, on: bool) -> None:
        self.board.power(on)
        self.state = on
        time.sleep(self.answer_s)

    def get(self) -> bool:
        return self.state


def test_the_interrupt_key_goes_out_while_a_slow_switch_is_still_answering(tmp_path: Path) -> None:
    """U-Boot's countdown (50 ms here) ends long before the plug answers (300 ms): the keys must already flow."""
    profile = fast_profile("nanopi-m6")
    board = VirtualBoard(profile, load_transcript("nanopi-m6"), time_scale=0.05,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    try:
        with Console(board.pty_path, 1_500_000, tmp_path / "logs", char_delay_s=0.01) as console:
            session = BringUpSession(profile, sim_bench(), console, SlowPlug(board, 0.3), off_time_s=0.05)
            session.uboot_prompt()
            assert session.stage == "u-boot" and "Booting Linux" not in session.boot_capture()
    finally:
        board.close()


class Unwired:
    """No board behind it: the test writes the console's bytes itself."""

    description = "unwired"

    def set(self, on: bool) -> None: ...

    def get(self) -> None:
        return None


def test_a_bad_line_still_arriving_is_quoted_whole(tmp_path: Path) -> None:
    """A panic line split across reads: the failure quotes all of it, not the part that had arrived."""
    import os
    import threading

    from pty_peer import LinePeer

    peer = LinePeer(lambda _line: "")
    profile = fast_profile("nanopi-m6")
    try:
        with Console(peer.path, 1_500_000, tmp_path / "logs") as console:
            session = BringUpSession(profile, sim_bench(), console, Unwired(), off_time_s=0)
            session.capture.start()
            os.write(peer.master, b"[    4.0] Kernel panic - not syncing: No workin")
            threading.Timer(0.3, lambda: os.write(peer.master, b"g init found.\r\n")).start()
            with pytest.raises(BoardFailure) as caught:
                session.evidence("Run /init as init process", stage="kernel", what="userspace", timeout=5)
    finally:
        peer.close()
    assert "Kernel panic - not syncing: No working init found." in str(caught.value)
