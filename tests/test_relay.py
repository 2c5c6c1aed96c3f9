"""The LCUS relay driver against the protocol-level double, over a real pty."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import pydantic
import pytest
import serial

from harness.errors import BenchError, ConfigError
from harness.power import lcus
from harness.power.base import PowerContext
from harness.power.lcus import LcusRelay
from harness.sim.relay import LcusRelayDouble

CH1_ON = bytes.fromhex("A0 01 01 A2")
CH1_OFF = bytes.fromhex("A0 01 00 A1")
CH2_ON = bytes.fromhex("A0 02 01 A3")
CH2_OFF = bytes.fromhex("A0 02 00 A2")


class Module:
    """A double plus the callbacks it made, for asserting on both."""

    def __init__(self, channels: int = 4) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.double = LcusRelayDouble(channels, on_change=lambda ch, on: self.calls.append((ch, on)))
        self.path = self.double.pty_path

    def send_raw(self, data: bytes) -> None:
        with serial.Serial(self.path, 9600) as port:
            port.write(data)
            port.flush()


@pytest.fixture
def module() -> Iterator[Module]:
    m = Module()
    yield m
    m.double.close()


def test_channel_1_frames_are_the_documented_bytes(module: Module) -> None:
    relay = LcusRelay(module.path, 1)
    relay.set(True)
    relay.set(False)
    assert module.double.wait_frames(2) == [CH1_ON, CH1_OFF]
    assert module.double.rejected == []


def test_on_sends_exactly_one_frame_and_the_module_switches(module: Module) -> None:
    LcusRelay(module.path, 2).set(True)
    assert module.double.wait_frames(1) == [CH2_ON]
    assert module.calls == [(2, True)]
    assert module.double.states == {1: False, 2: True, 3: False, 4: False}
    assert module.double.rejected == []


def test_off_sends_op_zero(module: Module) -> None:
    relay = LcusRelay(module.path, 2)
    relay.set(True)
    relay.set(False)
    assert module.double.wait_frames(2) == [CH2_ON, CH2_OFF]
    assert module.calls == [(2, True), (2, False)]
    assert module.double.states[2] is False


def test_invert_swaps_the_ops_but_not_the_meaning(module: Module) -> None:
    relay = LcusRelay(module.path, 2, invert=True)
    relay.set(True)
    assert relay.get() is True
    relay.set(False)
    assert relay.get() is False
    assert module.double.wait_frames(2) == [CH2_OFF, CH2_ON]
    assert "inverted" in relay.description


def test_quick_commands_are_spaced_by_the_frame_gap(module: Module) -> None:
    gap = 0.15
    relay = LcusRelay(module.path, 1, frame_gap_s=gap)
    relay.set(True)
    relay.set(False)
    module.double.wait_frames(2)
    first, second = module.double.frame_times
    assert second - first >= gap - 0.01  # the double timestamps on read; allow its scheduling slack


def test_the_gap_holds_across_channels_of_one_module(module: Module) -> None:
    gap = 0.15
    LcusRelay(module.path, 1, frame_gap_s=gap).set(True)
    LcusRelay(module.path, 2, frame_gap_s=gap).set(True)
    assert module.double.wait_frames(2) == [CH1_ON, CH2_ON]
    first, second = module.double.frame_times
    assert second - first >= gap - 0.01


def test_garbage_and_a_bad_checksum_are_rejected_and_the_good_frame_still_acts(module: Module) -> None:
    module.send_raw(bytes.fromhex("00 55") + bytes.fromhex("A0 02 01 FF") + CH2_ON)
    assert module.double.wait_frames(1) == [CH2_ON]
    assert module.calls == [(2, True)]
    rejected = module.double.rejected
    assert [data for data, _ in rejected] == [bytes.fromhex("00 55"), bytes.fromhex("A0 02 01 FF")]
    assert "garbage" in rejected[0][1]
    assert "checksum" in rejected[1][1]


def test_a_stray_frame_start_does_not_swallow_the_next_frame(module: Module) -> None:
    module.send_raw(b"\xa0" + CH1_ON)
    assert module.double.wait_frames(1) == [CH1_ON]
    assert [data for data, _ in module.double.rejected] == [b"\xa0" + CH1_ON[:3]]


def test_a_frame_split_across_writes_is_reassembled(module: Module) -> None:
    with serial.Serial(module.path, 9600) as port:
        port.write(CH2_ON[:2])
        port.flush()
        assert module.double.wait_frames(1, timeout=0.1) == []
        port.write(CH2_ON[2:])
        port.flush()
    assert module.double.wait_frames(1) == [CH2_ON]
    assert module.double.rejected == []


@pytest.mark.parametrize(("frame", "reason"), [
    (bytes.fromhex("A0 05 01 A6"), "channel 5 out of range 1..4"),
    (bytes.fromhex("A0 01 02 A3"), "unknown op 0x02"),
])
def test_well_summed_frames_the_module_cannot_obey_are_rejected(module: Module, frame: bytes, reason: str) -> None:
    module.send_raw(frame)
    [(data, why)] = module.double.wait_rejected(1)
    assert data == frame
    assert reason in why
    assert module.double.frames == []
    assert module.calls == []


@pytest.mark.parametrize("channel", [0, 9, True])
def test_channels_outside_1_to_8_are_refused(channel: int) -> None:
    with pytest.raises(ConfigError, match=r"power\.channel must be 1\.\.8"):
        LcusRelay("/dev/ttyUSB0", channel)


def test_a_missing_device_names_the_path_and_leaves_the_state_alone(tmp_path) -> None:
    path = str(tmp_path / "ttyUSB7")
    relay = LcusRelay(path, 1)
    with pytest.raises(BenchError, match=path) as info:
        relay.set(True)
    assert "power.port" in str(info.value)
    assert relay.get() is None


def test_get_is_the_last_command_not_a_read_back() -> None:
    # A one-channel module ignores channel 2, yet the driver cannot know and reports the command.
    with LcusRelayDouble(1) as double:
        relay = LcusRelay(double.pty_path, 2)
        assert relay.get() is None
        relay.set(True)
        assert relay.get() is True
        assert double.wait_rejected(1)[0][0] == CH2_ON
        assert double.states == {1: False}
        relay.set(False)
        assert relay.get() is False


class _FailingPort:
    def write(self, data: bytes) -> int:
        raise OSError(errno.EIO, "Input/output error")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_failed_write_makes_the_state_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lcus, "open_port", lambda url, baud, where: _FailingPort())
    relay = LcusRelay("/dev/ttyUSB3", 1, frame_gap_s=0)
    relay._commanded = True  # as after an earlier, successful set(True)
    with pytest.raises(BenchError, match=r"/dev/ttyUSB3.*plugged in"):
        relay.set(False)
    assert relay.get() is None


def test_a_port_briefly_held_by_another_run_is_waited_for(module: Module) -> None:
    holder = serial.Serial(module.path, 9600, exclusive=True)
    release = threading.Timer(0.2, holder.close)
    release.start()
    try:
        LcusRelay(module.path, 1).set(True)
    finally:
        release.join()
    assert module.double.wait_frames(1) == [CH1_ON]


def test_a_port_held_too_long_is_a_bench_error(module: Module, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lcus, "BUSY_RETRY_S", 0.1)
    with serial.Serial(module.path, 9600, exclusive=True), pytest.raises(BenchError, match="in use"):
        LcusRelay(module.path, 1).set(True)
    assert module.double.frames == []


def test_a_failing_callback_does_not_stop_the_double() -> None:
    def explode(channel: int, on: bool) -> None:
        raise RuntimeError("callback broke")

    with LcusRelayDouble(2, on_change=explode) as double:
        relay = LcusRelay(double.pty_path, 1)
        relay.set(True)
        relay.set(False)
        assert double.wait_frames(2) == [CH1_ON, CH1_OFF]
        assert [str(e) for e in double.callback_errors] == ["callback broke", "callback broke"]
        assert double.states[1] is False


def test_the_lcus_bench_section_builds_the_relay_it_describes() -> None:
    section = lcus.LcusSection(kind="lcus", port="/dev/ttyUSB2", channel=4, invert=True)
    relay = lcus.BACKEND.build(section, PowerContext(bench="desk"))
    assert (relay.url, relay.channel, relay.invert) == ("/dev/ttyUSB2", 4, True)
    assert lcus.BACKEND.kind == "lcus"


@pytest.mark.parametrize(("fields", "message"), [
    ({"channel": 9}, "channel 9 does not exist on an LCUS module; its relays are numbered 1..8"),
    ({"channel": True}, "valid integer"),
    ({"channel": "2"}, "valid integer"),
    ({"port": ""}, "at least 1 character"),
])
def test_the_lcus_bench_section_refuses_what_the_module_cannot_do(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        lcus.LcusSection.model_validate({"kind": "lcus", "port": "/dev/ttyUSB2", **fields})


def test_an_lcus_module_named_by_udev_identity_is_found_again_for_every_frame(tmp_path, monkeypatch) -> None:
    """CH340 modules have no serial number: the bench names the USB port, and a replugged module's new node
    is looked up at the next frame."""
    from harness.config.bench import load_bench
    from harness.power import lcus
    from harness.power.base import PowerContext
    from harness.power.registry import build_power

    with LcusRelayDouble(channels=2) as first, LcusRelayDouble(channels=2) as second:
        nodes = iter([first.pty_path, second.pty_path])
        asked: list[dict[str, str]] = []

        def resolve(subsystem: str, *, udev: dict[str, str], where: str, **_: object) -> str:
            asked.append(udev)
            assert subsystem == "tty" and where == "the bench's power.udev"
            return next(nodes)

        monkeypatch.setattr(lcus, "resolve_device_node", resolve)
        bench_file = tmp_path / "desk.yaml"
        bench_file.write_text("name: desk\nserial: {url: /dev/null}\n"
                              "power: {kind: lcus, udev: {ID_PATH: pci-0000:00:14.0-usb-0:3:1.0}, channel: 2}\n")
        bench = load_bench(str(bench_file), tmp_path)
        switch = build_power(bench.power, PowerContext(bench="desk"))
        assert asked == [], "building touches nothing"
        switch.set(True)
        switch.set(False)
        assert first.states[2] is True and second.states[2] is False
        assert asked == [{"ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"}] * 2
        assert switch.description == "LCUS relay udev {'ID_PATH': 'pci-0000:00:14.0-usb-0:3:1.0'} channel 2"
