"""The bring-up parts on their own: the stage strategy's broken latch and the boot capture's first failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import fast_profile, sim_bench

from harness.errors import BoardFailure, ConsoleTimeout
from harness.rig import bring_up


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
