"""Roadmap phase 3, kernel: console, Ethernet, eMMC, USB and the device tree.

Every gate here reads the same boot: the first one to run boots the board (or continues from the
U-Boot prompt), the others find the board already there and read the capture since power-on.
"""

from __future__ import annotations

import re

import pytest

from harness.config.profile import BoardProfile
from harness.parsers import (
    ETHERNET_LINK,
    KERNEL_CMDLINE,
    KERNEL_MODEL,
    KERNEL_VERSION,
    MMC_BLOCK,
    USB_DEVICE,
    console_args,
)
from harness.session import BringUpSession

pytestmark = pytest.mark.kernel

LINUX_ROOT_HUB_VENDOR = "1d6b"  # root hubs are virtual devices; a real enumeration has another vendor


@pytest.mark.requirement("BOOT-04")
def test_kernel_boots_to_console(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """BOOT-04: the kernel prints its version and a command line with this board's console argument."""
    version = booted.evidence(KERNEL_VERSION, stage="kernel", what="the 'Linux version' line")
    cmdline = booted.evidence(KERNEL_CMDLINE, stage="kernel", what="the kernel command line").group(1)
    wanted = (board_profile.console.kernel.device, board_profile.console.kernel.baud)
    assert wanted in console_args(cmdline), (
        f"Linux {version.group(1)} runs, but its command line lacks {board_profile.console.kernel_arg} "
        f"(so the console goes quiet or garbled after the kernel starts): {cmdline}")


@pytest.mark.requirement("KERN-01")
def test_ethernet_link_up(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-01: the board's Ethernet device reports link up (matched by device, since Talos renames it)."""
    assert board_profile.ethernet is not None, f"{board_profile.name}: the profile names no ethernet device"
    device = re.escape(board_profile.ethernet.device)
    link = booted.evidence(re.compile(rf"{device} (\S+): Link is Up - (\S+)", re.MULTILINE), stage="kernel",
                           what=f"link up on {board_profile.ethernet.device}")
    assert ETHERNET_LINK.search(link.group(0)), f"unexpected link line: {link.group(0)}"


@pytest.mark.requirement("KERN-02")
def test_emmc_detected(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-02: a block device appears on the eMMC host."""
    host = board_profile.kernel.mmc_hosts.get("emmc")
    assert host is not None, f"{board_profile.name}: kernel.mmc_hosts names no emmc host"
    found = booted.evidence(re.compile(rf"(mmcblk\d+): {re.escape(host)}:[0-9a-f]{{4}} \S+ [\d.]+ [GM]iB",
                                       re.MULTILINE), stage="kernel", what=f"an mmcblk device on {host} (eMMC)")
    assert MMC_BLOCK.search(found.group(0))


@pytest.mark.requirement("KERN-03")
def test_usb_host_enumerates_a_device(booted: BringUpSession) -> None:
    """KERN-03: a USB device other than a root hub enumerates."""
    device = booted.evidence(
        re.compile(rf"usb (\S+): New USB device found, idVendor=(?!{LINUX_ROOT_HUB_VENDOR})([0-9a-f]{{4}}), "
                   r"idProduct=([0-9a-f]{4})", re.MULTILINE),
        stage="kernel", what="a USB device (not a root hub) enumerating")
    assert USB_DEVICE.search(device.group(0)), f"unexpected USB line: {device.group(0)}"


@pytest.mark.requirement("KERN-04")
def test_device_tree_identifies_the_board(booted: BringUpSession, board_profile: BoardProfile) -> None:
    """KERN-04: the kernel's Machine model equals the profile's model string."""
    model = booted.evidence(KERNEL_MODEL, stage="kernel", what="the 'Machine model' line").group(1).strip()
    assert model == board_profile.kernel.model, (
        f"the device tree says {model!r}; the profile expects {board_profile.kernel.model!r}")
