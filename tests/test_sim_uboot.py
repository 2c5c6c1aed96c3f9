"""The virtual board's U-Boot command line, driven by the harness's UBoot driver (exit status via `$?`).

The storage gates decide on these answers, so the wording (mainline U-Boot's) and the exit
statuses are pinned here: a gate that parses them on the virtual board parses a real board too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pty_peer import LinePeer
from sim_support import fast_profile, sim_bench

from harness.console.console import Console
from harness.image.synthetic import make_talos_like_image
from harness.rig import bring_up
from harness.session import BringUpSession
from harness.uboot import UBoot

SD_SECTORS = 64 * 1024 * 1024 // 512  # make_talos_like_image's default size


@pytest.fixture(scope="module")
def at_prompt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BringUpSession]:
    """One NanoPi M6 held at its prompt for the whole module, a Talos image in its SD slot."""
    log_dir = tmp_path_factory.mktemp("uboot")
    sd = make_talos_like_image(log_dir / "sd.img")
    with bring_up(fast_profile("nanopi-m6"), sim_bench(image=str(sd)), log_dir) as session:
        session.uboot_prompt()
        yield session


@pytest.fixture
def uboot(at_prompt: BringUpSession) -> UBoot:
    return at_prompt.uboot_prompt()  # no power cycle while the prompt answers


def test_mmc_list_names_each_controller_and_the_card_in_it(uboot: UBoot) -> None:
    result = uboot.exec("mmc list")
    assert result.status == 0
    assert "mmc@fe2c0000: 1 (SD)" in result.output.splitlines()
    assert "mmc@fe2e0000: 0 (eMMC)" in result.output.splitlines()


def test_mmc_dev_selects_the_sd_card(uboot: UBoot) -> None:
    result = uboot.exec("mmc dev 1")
    assert result.status == 0
    assert "switch to partitions #0, OK" in result.output and "mmc1 is current device" in result.output


def test_mmc_dev_of_a_slot_that_does_not_exist_fails(uboot: UBoot) -> None:
    result = uboot.exec("mmc dev 7")
    assert result.status == 1 and "no mmc device at slot 7" in result.output


def test_mmc_info_of_the_sd_card(uboot: UBoot) -> None:
    result = uboot.exec("mmc dev 1; mmc info")
    assert result.status == 0
    assert re.search(r"^Capacity: \d+\.\d GiB$", result.output, re.MULTILINE)
    assert re.search(r"^Bus Width: 4-bit$", result.output, re.MULTILINE)


def test_mmc_part_lists_the_efi_partition_of_the_gpt(uboot: UBoot) -> None:
    result = uboot.exec("mmc dev 1; mmc part")
    assert result.status == 0
    assert "Partition Map for MMC device 1  --   Partition Type: EFI" in result.output
    assert re.search(r'^  1\t0x[0-9a-f]{8}\t0x[0-9a-f]{8}\t"EFI"$', result.output, re.MULTILINE)


def test_mmc_read_inside_the_card_succeeds_up_to_its_last_block(uboot: UBoot) -> None:
    first = uboot.exec("mmc dev 1; mmc read ${loadaddr} 0 1")
    last = uboot.exec(f"mmc dev 1; mmc read ${{loadaddr}} {SD_SECTORS - 1:x} 1")
    assert first.status == 0 and "1 blocks read: OK" in first.output
    assert last.status == 0 and "1 blocks read: OK" in last.output


def test_mmc_read_past_the_end_of_the_card_fails(uboot: UBoot) -> None:
    result = uboot.exec(f"mmc dev 1; mmc read ${{loadaddr}} {SD_SECTORS - 1:x} 2")
    assert result.status == 1 and "0 blocks read: ERROR" in result.output


def test_an_unknown_command_fails_in_uboot_words(uboot: UBoot) -> None:
    result = uboot.exec("foo")
    assert result.status == 1 and result.output == "Unknown command 'foo' - try 'help'"


def test_setenv_then_printenv_gives_the_value_back(uboot: UBoot) -> None:
    assert uboot.exec("setenv hil_test hello world").status == 0
    result = uboot.exec("printenv hil_test")
    assert result.status == 0 and result.output == "hil_test=hello world"


def test_printenv_of_an_undefined_variable_fails(uboot: UBoot) -> None:
    result = uboot.exec("printenv hil_never_set")
    assert result.status == 1 and '## Error: "hil_never_set" not defined' in result.output


@pytest.mark.parametrize(("command", "status"), [("printenv hil_never_set", "1"), ("version", "0")])
def test_dollar_question_is_the_status_of_the_previous_command(uboot: UBoot, command: str, status: str) -> None:
    """The driver's own marker relies on hush's `$?`: it must be the status of the command before it."""
    result = uboot.exec(f"{command}; echo $?")
    assert result.status == 0  # the status of `echo`
    assert result.output.splitlines()[-1] == status


# -- boards with less in them --------------------------------------------------------------------
def test_an_empty_sd_slot_is_listed_without_a_card_and_cannot_be_selected(tmp_path: Path) -> None:
    emmc = make_talos_like_image(tmp_path / "emmc.img")
    with bring_up(fast_profile("nanopi-m6"), sim_bench(emmc_image=str(emmc)), tmp_path) as session:
        uboot = session.uboot_prompt()
        listed = uboot.exec("mmc list")
        selected = uboot.exec("mmc dev 1")
    assert "mmc@fe2c0000: 1" in listed.output.splitlines()  # no "(SD)": no card answered
    assert selected.status == 1


def test_keys_dropped_by_a_fast_typist_garble_commands_but_paced_typing_does_not(tmp_path: Path) -> None:
    """RK3588 U-Boot loses keys typed with no gap: the profile's 10 ms per character must be enough,
    and typing without it must visibly fail (or the pacing would be untested)."""
    profile = fast_profile("nanopi-m6")
    assert profile.console.char_delay_ms == 10
    with bring_up(profile, sim_bench(drop_fast_keys=True), tmp_path) as session:
        uboot = session.uboot_prompt()
        paced = uboot.exec("version")
        session.console.send("version\n\n", char_delay_s=0)
        garbled = session.console.expect(r"Unknown command '(\w+)'", 5, stage="u-boot")
    assert paced.status == 0 and paced.output.startswith("U-Boot ")
    assert garbled.group(1) != "version"


# -- an answer at a UART's pace -------------------------------------------------------------------
class PacedUBoot:
    """A U-Boot prompt on a pty that prints each answer in many small writes, as a real UART delivers it.

    The virtual board writes an answer in one go, which the console may take in one or two reads; at
    1.5 Mbaud 64 KB take half a second, and the driver's wait searches again after every read. The
    marker protocol is the driver's: the typed line echoed, the output, `=TAG=<status>=`, the prompt.
    """

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.peer = LinePeer(self._reply, piece=2048, gap=0.002)
        self.path = self.peer.path

    def _reply(self, line: str) -> str:
        marker = re.search(r"echo (=\w+=)\$\?=$", line)
        if marker is None:
            return "\r\n=> "
        return f"{line}\r\n{self.answer}{marker.group(1)}0=\r\n=> "

    def close(self) -> None:
        self.peer.close()


def test_an_answer_far_longer_than_the_search_window_comes_back_whole(tmp_path: Path) -> None:
    """`printenv` on a real board prints tens of KB over many reads; its beginning must be in the result
    (the expect window is 8 KB), since gates parse such output from the driver, not from the raw log."""
    lines = [f"hil_var{i:04d}=0x{i:08x} mmc dev 1; load mmc 1:1 ${{kernel_addr_r}} Image" for i in range(1300)]
    peer = PacedUBoot("".join(f"{line}\r\n" for line in lines))
    try:
        with Console(peer.path, 115200, tmp_path) as console:
            result = UBoot(console, fast_profile("nanopi-m6")).exec("printenv", timeout=10)
    finally:
        peer.close()
    assert len(result.output) > 64 * 1024
    assert result.status == 0
    assert result.output.splitlines() == lines
