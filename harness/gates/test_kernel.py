"""Roadmap phase 3, kernel: console, Ethernet, eMMC, USB and the device tree.

Every gate here reads the same boot: the first one to run boots the board (or continues from the
U-Boot prompt), the others find the board already there and read the capture since power-on.
Each waits for the line the registry says it needs, then judges the capture with the same judge
`hil log analyze` uses offline.
"""

from __future__ import annotations

from harness import judges
from harness.command import PollTimeout
from harness.config.profile import BoardProfile
from harness.gates.registry import BY_ID, gate
from harness.session import BringUpSession


def judge_live(session: BringUpSession, profile: BoardProfile, requirement: str) -> judges.Judgment:
    """Ask the shell when the stage has one and the profile says how; else read this boot's kernel log."""
    check = profile.shell.evidence.get(requirement) if profile.shell else None
    if check is not None:
        try:
            last = session.shell().poll_until(check.command, lambda r: judges.shell_check(r, check.expect).passed,
                                              timeout=check.within_s, interval=0.5)
        except PollTimeout as timed_out:
            last = timed_out.last
        return judges.shell_check(last, check.expect)
    entry = BY_ID[requirement]
    pattern, what = entry.wait_for(profile)
    session.evidence(pattern, stage="kernel", what=what,
                     needs_stage=entry.needs_stage(profile) if entry.needs_stage else None)
    assert entry.judge is not None
    return entry.judge(session.boot_capture(), profile)


@gate("BOOT-04")
def test_kernel_boots_to_console(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """BOOT-04: the kernel reaches userspace, with a command line carrying this board's console argument."""
    judgment = judge_live(booted, board_profile, "BOOT-04")
    assert judgment.passed, judgment.reason


@gate("KERN-01")
def test_ethernet_link_up(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-01: the board's Ethernet device reports link up (matched by device, since Talos renames it)."""
    judgment = judge_live(booted, board_profile, "KERN-01")
    assert judgment.passed, judgment.reason


@gate("KERN-02")
def test_emmc_detected(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-02: a block device appears on the eMMC host."""
    judgment = judge_live(booted, board_profile, "KERN-02")
    assert judgment.passed, judgment.reason


@gate("KERN-03")
def test_usb_host_enumerates_a_device(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-03: a USB device other than a root hub enumerates."""
    judgment = judge_live(booted, board_profile, "KERN-03")
    assert judgment.passed, judgment.reason


@gate("KERN-04")
def test_device_tree_identifies_the_board(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-04: the kernel's Machine model equals the profile's model string."""
    judgment = judge_live(booted, board_profile, "KERN-04")
    assert judgment.passed, judgment.reason
