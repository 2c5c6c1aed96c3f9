"""The hardware path of a bench: udev lookup of the serial port, an LCUS relay named in the bench file.

Here the far side is a virtual board and an LCUS relay double on ptys, wired through a bench file
of kind `hardware`, so the harness takes exactly the code path it takes on a desk. The udev lookup
runs against this machine's real sysfs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pyudev
from bench_doubles import hardware_bench, run_bootloader_gates, virtual_board
from sim_support import fast_profile

from harness.config.bench import load_bench
from harness.errors import BenchError
from harness.image.synthetic import make_talos_like_image
from harness.power.lcus import LcusRelay
from harness.rig import bring_up
from harness.sim.board import VirtualBoard
from harness.sim.relay import LcusRelayDouble
from harness.sim.transcript import load_transcript
from harness.transports.udev import find_serial_devices, serial_locator


def test_udev_lookup_finds_a_tty_by_its_properties() -> None:
    device = next(d for d in pyudev.Context().list_devices(subsystem="tty") if d.device_node)
    assert find_serial_devices({"DEVPATH": device.properties["DEVPATH"]}) == [device.device_node]
    assert serial_locator({"DEVPATH": device.properties["DEVPATH"]})() == device.device_node
    assert serial_locator({"DEVPATH": "/devices/hil/no-such-uart"})() is None


def test_udev_properties_matching_several_ports_are_refused() -> None:
    with pytest.raises(BenchError, match=r"matches \d+ devices.*ID_PATH"):
        serial_locator({"SUBSYSTEM": "tty"})()


def test_a_missing_udev_device_is_a_bench_error_naming_the_properties(tmp_path: Path) -> None:
    with LcusRelayDouble(channels=1) as relay:
        bench_file = tmp_path / "desk.yaml"
        bench_file.write_text("name: desk\nserial:\n  udev: {ID_PATH: pci-0000:00:14.0-usb-0:9:1.0}\n"
                              f"power: {{kind: lcus, port: {relay.pty_path}, channel: 1}}\nram_mb: 8192\n")
        bench = load_bench(str(bench_file), tmp_path)
        with pytest.raises(BenchError) as caught, bring_up(fast_profile("nanopi-m6"), bench, tmp_path / "logs"):
            pass
        assert relay.states[1] is False, "the board was switched off before anything else"
    assert "ID_PATH" in str(caught.value) and "not present" in str(caught.value)


def test_a_board_left_on_by_a_killed_run_is_switched_off_before_anything_else(tmp_path: Path) -> None:
    """A SIGKILLed run cannot switch its relay off: the next run does, before it opens the console."""
    profile = fast_profile("nanopi-m6")
    board = VirtualBoard(profile, load_transcript("nanopi-m6"), time_scale=0.05,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    switched: list[bool] = []
    relay = LcusRelayDouble(channels=1, on_change=lambda _channel, on: (switched.append(on), board.power(on)))
    try:
        LcusRelay(relay.pty_path, 1).set(True)  # what the killed run left behind
        assert board.powered
        bench_file = tmp_path / "desk.yaml"
        bench_file.write_text(f"name: desk\nkind: hardware\nserial: {{url: {board.pty_path}}}\n"
                              f"power: {{kind: lcus, port: {relay.pty_path}, channel: 1, off_time_s: 0.1}}\n")
        with bring_up(profile, load_bench(str(bench_file), tmp_path), tmp_path / "logs") as session:
            assert not board.powered and switched == [True, False]
            assert session.power_ons == 0
        log = (tmp_path / "logs" / "console.log").read_text()
        assert log.index("[hil] power off before the run") < log.index("[hil] console closed")
    finally:
        relay.close()
        board.close()


def test_hardware_bench_with_an_lcus_relay_drives_the_board(tmp_path: Path) -> None:
    profile = fast_profile("nanopi-m6")
    board = VirtualBoard(profile, load_transcript("nanopi-m6"), time_scale=0.05,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    relay = LcusRelayDouble(channels=2, on_change=lambda channel, on: channel == 2 and board.power(on))
    try:
        bench_file = tmp_path / "desk.yaml"
        bench_file.write_text(f"name: desk\nkind: hardware\nserial: {{url: {board.pty_path}}}\n"
                              f"power: {{kind: lcus, port: {relay.pty_path}, channel: 2, off_time_s: 0.1}}\n"
                              "ram_mb: 8192\n")
        with bring_up(profile, load_bench(str(bench_file), tmp_path), tmp_path / "logs") as session:
            assert session.uboot_prompt().exec("version").ok
            assert session.power.description.startswith(f"LCUS relay {relay.pty_path} channel 2")
        assert relay.states[2] is False, "the session leaves the board off"
        assert bytes.fromhex("A0 02 01 A3") in relay.frames, "power-on went out as the documented LCUS frame"
    finally:
        relay.close()
        board.close()


def test_the_bootloader_gates_pass_through_an_lcus_relay(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            LcusRelayDouble(channels=4, on_change=lambda channel, on: channel == 3 and board.power(on)) as relay:
        bench = hardware_bench(tmp_path, board, f"{{kind: lcus, port: {relay.pty_path}, channel: 3, off_time_s: 0.1}}")
        done = run_bootloader_gates(bench, tmp_path / "report")
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
        assert relay.states[3] is False, "left off"
