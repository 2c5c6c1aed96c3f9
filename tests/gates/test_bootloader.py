"""Roadmap phase 2, bootloader: DDR init and the U-Boot prompt."""

from __future__ import annotations

import pytest

from harness.config.profile import BoardProfile
from harness.parsers import ddr_facts
from harness.session import BringUpSession
from harness.uboot import UBoot

pytestmark = pytest.mark.bootloader


@pytest.mark.requirement("BOOT-01")
def test_uboot_prompt_after_power_on(uboot: UBoot, board_profile: BoardProfile) -> None:
    """BOOT-01: the U-Boot prompt appears on the UART after power-on."""
    result = uboot.run("version")
    assert result.ok, f"'version' at the U-Boot prompt exited {result.status}:\n{result.output}"
    assert "U-Boot" in result.output, f"'version' did not print a U-Boot banner:\n{result.output}"


@pytest.mark.requirement("BOOT-02")
def test_ddr_init(uboot: UBoot, bring_up_session: BringUpSession, board_profile: BoardProfile,
                  unit_ram_mb: int) -> None:
    """BOOT-02: DDR init reports the profile's memory type and clock and this unit's RAM size."""
    expected = board_profile.ddr
    if expected is None:
        pytest.skip(f"not applicable: {board_profile.name} prints no DDR init (its profile has ddr: null)")
    ddr = ddr_facts(bring_up_session.boot_capture())
    assert ddr.type is not None, "no DDR type/clock line (e.g. 'LPDDR5, 2400MHz') in this boot's console"
    assert (ddr.type, ddr.mhz) == (expected.type, expected.mhz), (
        f"DDR init reports {ddr.line!r}; the profile expects {expected.type}, {expected.mhz}MHz")
    assert ddr.size_mb == unit_ram_mb, (
        f"DDR channels sum to {ddr.size_mb} MB ({ddr.channels}); this unit has {unit_ram_mb} MB (bench ram_mb)")
