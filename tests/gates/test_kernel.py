"""Roadmap phase 3, kernel: console, Ethernet, eMMC, USB and the device tree.

Every gate here reads the same boot: the first one to run boots the board (or continues from the
U-Boot prompt), the others find the board already there and read the capture since power-on.
Each waits for the line it needs, then judges the capture with the same judge `hil log analyze`
uses offline.
"""

from __future__ import annotations

import time

import pytest

from harness import judges
from harness.config.profile import BoardProfile
from harness.session import BringUpSession

pytestmark = pytest.mark.kernel


def judge_live(session: BringUpSession, profile: BoardProfile, requirement: str, what: str) -> judges.Judgment:
    """Ask the shell when the stage has one and the profile says how; else read this boot's kernel log."""
    check = profile.shell.evidence.get(requirement) if profile.shell else None
    if check is not None:
        deadline = time.monotonic() + check.within_s
        while not (judgment := judges.shell_check(session.shell().run(check.command), check.expect)).passed:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return judgment
    session.evidence(judges.evidence_pattern(requirement, profile), stage="kernel", what=what)
    return judges.PASSIVE[requirement](session.boot_capture(), profile)


@pytest.mark.requirement("BOOT-04")
def test_kernel_boots_to_console(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """BOOT-04: the kernel prints its version and a command line with this board's console argument."""
    judgment = judge_live(booted, board_profile, "BOOT-04", "the kernel handing over to userspace")
    assert judgment.passed, judgment.reason


@pytest.mark.requirement("KERN-01")
def test_ethernet_link_up(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-01: the board's Ethernet device reports link up (matched by device, since Talos renames it)."""
    device = board_profile.ethernet.device if board_profile.ethernet else "(none in the profile)"
    judgment = judge_live(booted, board_profile, "KERN-01", f"link up on {device}")
    assert judgment.passed, judgment.reason


@pytest.mark.requirement("KERN-02")
def test_emmc_detected(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-02: a block device appears on the eMMC host."""
    host = board_profile.kernel.mmc_hosts.get("emmc", "(none in the profile)")
    judgment = judge_live(booted, board_profile, "KERN-02", f"an mmcblk device on {host} (eMMC)")
    assert judgment.passed, judgment.reason


@pytest.mark.requirement("KERN-03")
def test_usb_host_enumerates_a_device(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-03: a USB device other than a root hub enumerates."""
    judgment = judge_live(booted, board_profile, "KERN-03", "a USB device (not a root hub) enumerating")
    assert judgment.passed, judgment.reason


@pytest.mark.requirement("KERN-04")
def test_device_tree_identifies_the_board(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-04: the kernel's Machine model equals the profile's model string."""
    judgment = judge_live(booted, board_profile, "KERN-04", "the 'Machine model' line")
    assert judgment.passed, judgment.reason
