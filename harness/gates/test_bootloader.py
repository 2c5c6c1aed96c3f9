"""Roadmap phase 2, bootloader: DDR init, the U-Boot prompt, U-Boot reading the microSD."""

from __future__ import annotations

from harness import judges
from harness.config.profile import BoardProfile
from harness.gates.registry import gate
from harness.session import BringUpSession
from harness.uboot import UBoot


@gate("BOOT-01")
def test_uboot_prompt_after_power_on(uboot: UBoot) -> None:
    """BOOT-01: the U-Boot prompt appears on the UART after power-on (autoboot interrupted)."""
    result = uboot.exec("version")
    assert result.ok, f"'version' at the U-Boot prompt exited {result.status}:\n{result.output}"
    assert "U-Boot" in result.output, f"'version' did not print a U-Boot banner:\n{result.output}"


@gate("BOOT-02")
def test_ddr_init(uboot: UBoot, bring_up_session: BringUpSession, board_profile: BoardProfile,
                  unit_ram_mb: int) -> None:
    """BOOT-02: DDR init reports the profile's memory type and clock and this unit's RAM size."""
    judgment = judges.boot02(bring_up_session.boot_capture(), board_profile, ram_mb=unit_ram_mb)
    assert judgment.passed, f"{judgment.reason} (this boot's console)"


@gate("BOOT-03")
def test_uboot_reads_the_microsd(uboot: UBoot, board_profile: BoardProfile) -> None:
    """BOOT-03: U-Boot sees the SD controller, selects the card, reads its partition table and a block."""
    sd = board_profile.mmc("sd")
    assert sd is not None, f"{board_profile.name}: the profile names no SD controller (uboot.mmc)"
    listing = uboot.exec("mmc list")
    assert listing.ok and f"{sd.controller}: {sd.index}" in listing.output, (
        f"'mmc list' (exit {listing.status}) does not show the SD controller {sd.controller} as "
        f"device {sd.index}:\n{listing.output}")
    select = uboot.exec(f"mmc dev {sd.index}")
    assert select.ok, f"'mmc dev {sd.index}' exited {select.status}: no card or no answer:\n{select.output}"
    table = uboot.exec("mmc part")
    assert table.ok and "Partition Type: EFI" in table.output, (
        f"'mmc part' (exit {table.status}) shows no GPT on the card:\n{table.output}")
    block = uboot.exec("mmc read ${loadaddr} 0 1")
    assert block.ok and "1 blocks read: OK" in block.output, (
        f"'mmc read' (exit {block.status}) could not read block 0:\n{block.output}")
