"""The dcttech USBRelay and LCTech HID relay backends, against doubles of the hidraw seam that act like the boards.

This machine's kernel has neither UHID (/dev/uhid) nor CUSE, so no real hidraw node can be made
here for a fake board to sit behind. The backends are therefore driven through `HidDevice`
(harness.transports.hidraw), the seam they are written against, with doubles that behave like the
boards' firmware; `HidrawDevice` itself is tested apart: its ioctl numbers against the kernel's
known values, its buffers through a recording ioctl, and its errors against real files.
"""

from __future__ import annotations

import errno
import fcntl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
from support import ROOT

from harness.config.bench import load_bench
from harness.config.power_support import registered_power_kinds
from harness.errors import BenchError
from harness.power import lctech_hid, usbrelay_hid
from harness.power.base import Inverted, PowerContext
from harness.power.control import PowerControl
from harness.power.lctech_hid import LctechHidRelay, LctechHidSection, output_report
from harness.power.usbrelay_hid import UsbRelayHid, UsbRelayHidSection, command, parse_state
from harness.rig import _hardware_power
from harness.transports import hidraw
from harness.transports.hidraw import HidInfo, HidrawDevice

DCTTECH = HidInfo(bustype=3, vendor=0x16C0, product=0x05DF)
LCTECH = HidInfo(bustype=3, vendor=0x5131, product=0x2007)


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coil settle time is real-hardware time; here it only slows the tests."""
    monkeypatch.setattr(usbrelay_hid, "SETTLE_S", 0)
    monkeypatch.setattr(lctech_hid, "SETTLE_S", 0)


# -- doubles ---------------------------------------------------------------------------------------
class UsbRelayBoard:
    """A dcttech USBRelayN board as its firmware behaves, seen through hidraw.

    It keeps the bitmask of relays that are on, switches on `FF n`/`FD n` (all on/off on `FE`/`FC`),
    answers GET feature with its 5-byte id and the bitmask in byte 7, and ignores what it does not
    know (an unknown op, a relay it lacks). `stuck` relays ignore commands, as a welded contact or a
    dead driver transistor would; `answer` replaces the GET feature reply, for garbage.
    """

    def __init__(self, channels: int = 2, *, board_id: bytes = b"HURTM", name: str | None = None,
                 info: HidInfo = DCTTECH) -> None:
        self.channels = channels
        self.board_id = board_id
        self._name = f"www.dcttech.com USBRelay{channels}" if name is None else name
        self._info = info
        self.mask = 0
        self.stuck: set[int] = set()
        self.answer: bytes | None = None
        self.features: list[bytes] = []
        self.ignored: list[bytes] = []
        self.opened: list[str] = []
        self.open_now = 0
        self.path = ""

    def open(self, path: str) -> UsbRelayBoard:
        """The opener the backend is given: the same board, whichever node it was found at."""
        self.path = path
        self.opened.append(path)
        self.open_now += 1
        return self

    def close(self) -> None:
        self.open_now -= 1

    def info(self) -> HidInfo:
        return self._info

    def name(self) -> str:
        return self._name

    def set_feature(self, report: bytes) -> None:
        assert len(report) == 9 and report[0] == 0, f"the kernel would send {report.hex(' ')} wrongly"
        self.features.append(report)
        op, relay = report[1], report[2]
        every = (1 << self.channels) - 1
        if op in (0xFF, 0xFD) and 1 <= relay <= self.channels and relay not in self.stuck:
            bit = 1 << (relay - 1)
            self.mask = self.mask | bit if op == 0xFF else self.mask & ~bit
        elif op in (0xFE, 0xFC):
            self.mask = every if op == 0xFE else 0
        else:
            self.ignored.append(report)

    def get_feature(self, report_id: int, length: int) -> bytes:
        assert (report_id, length) == (0, 9)
        if self.answer is not None:
            return self.answer
        return bytes([0]) + self.board_id + bytes(2) + bytes([self.mask])

    def write(self, report: bytes) -> None:
        raise AssertionError("a USBRelay board is driven by feature reports, not output reports")

    def is_on(self, relay: int) -> bool:
        return bool(self.mask >> (relay - 1) & 1)


class LctechModule:
    """An LCTech HID module: takes output reports `00 A0 ch op sum`, switches, never answers."""

    def __init__(self, channels: int = 4, *, info: HidInfo = LCTECH) -> None:
        self.channels = channels
        self._info = info
        self.states = dict.fromkeys(range(1, channels + 1), False)
        self.reports: list[bytes] = []
        self.report_times: list[float] = []
        self.rejected: list[bytes] = []
        self.path = ""

    def open(self, path: str) -> LctechModule:
        self.path = path
        return self

    def close(self) -> None:
        pass

    def info(self) -> HidInfo:
        return self._info

    def name(self) -> str:
        return "LCTech USB Relay"

    def set_feature(self, report: bytes) -> None:
        raise AssertionError("the LCTech module takes output reports")

    def get_feature(self, report_id: int, length: int) -> bytes:
        raise AssertionError("the LCTech module has no feature report to read")

    def write(self, report: bytes) -> None:
        self.reports.append(report)
        self.report_times.append(time.monotonic())
        rid, start, channel, op, check = report
        if rid != 0 or start != 0xA0 or check != (start + channel + op) & 0xFF or channel not in self.states \
                or op not in (0, 1):
            self.rejected.append(report)
            return
        self.states[channel] = bool(op)


def usbrelay(board: UsbRelayBoard, channel: int = 1, **kwargs: Any) -> UsbRelayHid:
    return UsbRelayHid(device="/dev/hidraw3", channel=channel, opener=board.open, **kwargs)


def relay_reads_back(control: PowerControl) -> bool:
    return bool(getattr(control.switch, "reads_back", True))


# -- ioctl numbers and report bytes -----------------------------------------------------------------
def test_the_ioctl_numbers_are_the_kernels() -> None:
    assert hidraw.hidiocsfeature(9) == 0xC0094806
    assert hidraw.hidiocgfeature(9) == 0xC0094807
    assert hidraw.HIDIOCGRAWINFO == 0x80084803
    assert hidraw.hidiocgrawname(256) == 0x81004804
    assert hidraw.ioc(hidraw.IOC_NONE, "H", 0x01, 0) == 0x4801
    with pytest.raises(ValueError, match="14 bits"):
        hidraw.hidiocgfeature(1 << 14)


def test_the_usbrelay_reports_are_the_documented_bytes() -> None:
    assert command(0xFF, 1) == bytes.fromhex("00 FF 01 00 00 00 00 00 00")
    assert command(0xFD, 2) == bytes.fromhex("00 FD 02 00 00 00 00 00 00")


def test_the_lctech_report_is_report_zero_and_the_lcus_frame() -> None:
    assert output_report(1, True) == bytes.fromhex("00 A0 01 01 A2")
    assert output_report(1, False) == bytes.fromhex("00 A0 01 00 A1")
    assert output_report(4, True) == bytes.fromhex("00 A0 04 01 A5")


# -- HidrawDevice: buffers through a recording ioctl, errors against real files ----------------------
class RecordingIoctl:
    """Stands in for fcntl.ioctl: records each request and buffer, and answers as the kernel would."""

    def __init__(self, answers: dict[int, Callable[[bytearray], int]]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, bytes]] = []

    def __call__(self, fd: int, request: int, buffer: bytearray, mutate: bool = True) -> int:
        assert mutate and isinstance(buffer, bytearray)
        self.calls.append((request, bytes(buffer)))
        return self.answers[request](buffer)


def _fill(data: bytes, result: int | None = None) -> Callable[[bytearray], int]:
    def answer(buffer: bytearray) -> int:
        buffer[:len(data)] = data
        return len(data) if result is None else result
    return answer


def test_hidraw_device_passes_the_kernel_the_right_requests_and_buffers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = tmp_path / "hidraw3"
    node.write_bytes(b"")
    info = hidraw.RAW_INFO.pack(3, 0x16C0, 0x05DF)
    ioctl = RecordingIoctl({
        hidraw.hidiocsfeature(9): lambda buffer: len(buffer),
        hidraw.hidiocgfeature(9): _fill(bytes.fromhex("00 48 55 52 54 4D 00 00 02")),
        hidraw.HIDIOCGRAWINFO: _fill(info),
        hidraw.hidiocgrawname(hidraw.NAME_MAX): _fill(b"www.dcttech.com USBRelay2\0"),
    })
    monkeypatch.setattr(fcntl, "ioctl", ioctl)
    with HidrawDevice(str(node)) as device:
        device.set_feature(command(0xFF, 2))
        assert device.get_feature(0, 9) == bytes.fromhex("00 48 55 52 54 4D 00 00 02")
        assert device.info() == DCTTECH and device.info().usb_id == "16c0:05df"
        assert device.name() == "www.dcttech.com USBRelay2"
    assert ioctl.calls[0] == (0xC0094806, command(0xFF, 2))
    assert ioctl.calls[1] == (0xC0094807, bytes(9))  # byte 0 is the report number asked for
    assert device.fd == -1, "closed on leaving the block"


def test_hidraw_device_refuses_a_feature_report_taken_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = tmp_path / "hidraw3"
    node.write_bytes(b"")
    monkeypatch.setattr(fcntl, "ioctl", RecordingIoctl({hidraw.hidiocsfeature(9): lambda buffer: 4}))
    with HidrawDevice(str(node)) as device, pytest.raises(BenchError, match=r"took 4 of 9 bytes"):
        device.set_feature(command(0xFF, 1))


def test_hidraw_device_write_sends_the_exact_bytes(tmp_path: Path) -> None:
    node = tmp_path / "hidraw4"
    node.write_bytes(b"")
    with HidrawDevice(str(node)) as device:
        device.write(output_report(2, True))
    assert node.read_bytes() == bytes.fromhex("00 A0 02 01 A3")


def test_a_node_that_is_not_hidraw_is_named_by_the_real_kernels_answer(tmp_path: Path) -> None:
    node = tmp_path / "not-hidraw"
    node.write_bytes(b"")
    with HidrawDevice(str(node)) as device, pytest.raises(BenchError, match=f"{node}: the device is not a hidraw"):
        device.get_feature(0, 9)


@pytest.mark.parametrize(("code", "hint"), [
    (errno.ENOENT, "is not present"),
    (errno.EACCES, "is not accessible to this user: add a udev rule"),
    (errno.ENODEV, "went away"),
])
def test_open_errors_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, hint: str) -> None:
    def refuse(path: str, flags: int) -> int:
        raise OSError(code, "refused")

    monkeypatch.setattr(hidraw.os, "open", refuse)
    with pytest.raises(BenchError, match=f"opening /dev/hidraw9: the device {hint}"):
        HidrawDevice("/dev/hidraw9")


# -- dcttech USBRelay: on, off, read-back --------------------------------------------------------
def test_on_and_off_send_the_documented_reports_and_read_back_through_power_control() -> None:
    board = UsbRelayBoard(2)
    control = PowerControl(usbrelay(board, 2), off_time_s=0)
    control.on()
    assert board.features == [command(0xFF, 2)] and board.mask == 0b10
    assert str(control.status()) == "on" and relay_reads_back(control)
    control.off()
    assert board.features == [command(0xFF, 2), command(0xFD, 2)] and board.mask == 0
    assert str(control.status()) == "off"
    assert board.ignored == [] and board.open_now == 0, "each command opens and closes the node"


def test_get_reads_the_board_not_the_last_command() -> None:
    board = UsbRelayBoard(4)
    relay = usbrelay(board, 3)
    assert relay.get() is False
    board.mask = 0b0100  # someone else (usbrelay on the command line) switched relay 3 on
    assert relay.get() is True
    assert relay.board_id == "HURTM"
    assert board.features == [], "reading sends no command"


def test_a_cycle_leaves_the_other_relays_alone() -> None:
    board = UsbRelayBoard(4)
    board.mask = 0b1001
    PowerControl(usbrelay(board, 2), off_time_s=0).cycle()
    assert board.mask == 0b1011


def test_invert_sends_off_for_on_and_reads_back_the_meaning() -> None:
    board = UsbRelayBoard(2)
    section = UsbRelayHidSection(kind="usbrelay-hid", device="/dev/hidraw3", channel=1, invert=True)
    switch = usbrelay_hid.build(section, PowerContext(bench="desk"))
    assert isinstance(switch, Inverted) and isinstance(switch.switch, UsbRelayHid)
    switch.switch.node.opener = board.open
    control = PowerControl(switch, off_time_s=0)
    control.on()
    assert board.features == [command(0xFD, 1)] and not board.is_on(1)
    assert str(control.status()) == "on"
    control.off()
    assert board.is_on(1) and str(control.status()) == "off"
    assert "inverted" in control.description


def test_a_relay_that_does_not_follow_is_a_bench_error_from_power_control() -> None:
    board = UsbRelayBoard(2)
    board.stuck.add(1)
    with pytest.raises(BenchError, match=r"dcttech USB relay /dev/hidraw3 channel 1 was switched on but reads back "
                                         r"off: check the relay and its channel"):
        PowerControl(usbrelay(board, 1), off_time_s=0).on()


def test_a_channel_the_board_lacks_names_its_count_and_sends_nothing() -> None:
    board = UsbRelayBoard(2)
    with pytest.raises(BenchError, match=r"channel 4: /dev/hidraw3 has 2 relays \(1\.\.2\), no relay 4"):
        usbrelay(board, 4).set(True)
    with pytest.raises(BenchError, match="has 1 relay "):
        usbrelay(UsbRelayBoard(1), 2).get()
    assert board.features == []


def test_a_v_usb_device_that_is_not_a_relay_board_is_refused_unless_channels_are_given() -> None:
    gadget = UsbRelayBoard(2, name="obdev.at LEDBlinker")
    with pytest.raises(BenchError, match=r"its name 'obdev.at LEDBlinker' is not a dcttech USBRelay1/2/4/8.*"
                                         r"power.channels"):
        usbrelay(gadget, 1).set(True)
    assert gadget.features == []
    usbrelay(gadget, 1, channels=2).set(True)  # a clone with other firmware, named in the section
    assert gadget.is_on(1)


def test_a_node_that_is_another_device_is_refused() -> None:
    keyboard = UsbRelayBoard(2, info=HidInfo(3, 0x046D, 0xC52B))
    with pytest.raises(BenchError, match=r"/dev/hidraw3 is USB device 046d:c52b, not 16c0:05df: hidraw numbers"):
        usbrelay(keyboard, 1).set(True)
    assert keyboard.features == [] and keyboard.open_now == 0


@pytest.mark.parametrize(("answer", "why"), [
    (bytes.fromhex("00 48 55 52"), "is 4 bytes"),
    (b"", "is 0 bytes (empty)"),
    (bytes.fromhex("01 48 55 52 54 4D 00 00 01"), "report number 1"),
    (bytes.fromhex("00 48 55 52 54 4D 00 00 FF"), "says relays 1,2,3,4,5,6,7,8 are on, but the board has 2"),
])
def test_a_garbled_state_report_is_a_bench_error_not_a_guess(answer: bytes, why: str) -> None:
    board = UsbRelayBoard(2)
    board.answer = answer
    with pytest.raises(BenchError, match=r"dcttech USB relay /dev/hidraw3 channel 1: /dev/hidraw3: ") as caught:
        PowerControl(usbrelay(board, 1), off_time_s=0).status()
    assert why in str(caught.value)


def test_parse_state_reads_the_board_id_and_the_mask() -> None:
    state = parse_state(bytes.fromhex("00 48 55 52 54 4D 00 00 05"), 4)
    assert state.board_id == "HURTM" and state.relays_on == 0b101
    assert [state.is_on(n) for n in (1, 2, 3, 4)] == [True, False, True, False]


def test_a_missing_node_names_the_device_and_the_channel(tmp_path: Path) -> None:
    path = str(tmp_path / "hidraw9")
    with pytest.raises(BenchError, match=rf"dcttech USB relay {path} channel 2: opening {path}: the device is not "
                                         "present"):
        UsbRelayHid(device=path, channel=2).set(True)


def test_a_udev_identity_nothing_has_names_the_identity_and_the_channel() -> None:
    """Against this machine's real sysfs, which has no such relay."""
    relay = UsbRelayHid(udev={"ID_PATH": "pci-0000:99:99.9-usb-0:9:1.0"}, channel=3)
    with pytest.raises(BenchError, match=r"dcttech USB relay udev \{'ID_PATH': 'pci-0000:99:99.9-usb-0:9:1.0'\} "
                                         r"channel 3: the bench's power .*no hidraw device is present"):
        relay.get()


def test_the_node_is_found_by_udev_on_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = iter(["/dev/hidraw3", "/dev/hidraw5"])  # the board re-enumerated between the two commands
    monkeypatch.setattr(usbrelay_hid, "resolve_device_node", lambda subsystem, **kwargs: next(nodes))
    board = UsbRelayBoard(2)
    relay = UsbRelayHid(udev={"ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"}, channel=1, opener=board.open)
    relay.set(True)
    relay.set(False)
    assert board.opened == ["/dev/hidraw3", "/dev/hidraw5"]


def test_the_double_ignores_what_the_firmware_ignores_and_obeys_all_on_off() -> None:
    board = UsbRelayBoard(2)
    board.set_feature(bytes.fromhex("00 12 01 00 00 00 00 00 00"))
    board.set_feature(command(0xFF, 3))
    assert board.mask == 0 and len(board.ignored) == 2
    board.set_feature(bytes.fromhex("00 FE 00 00 00 00 00 00 00"))
    assert board.mask == 0b11
    board.set_feature(bytes.fromhex("00 FC 00 00 00 00 00 00 00"))
    assert board.mask == 0


# -- LCTech HID --------------------------------------------------------------------------------------
def test_lctech_on_and_off_write_the_frames_and_the_state_stays_unknown() -> None:
    module = LctechModule(4)
    relay = LctechHidRelay(device="/dev/hidraw4", channel=2, opener=module.open, frame_gap_s=0)
    control = PowerControl(relay, off_time_s=0)
    control.on()
    assert module.states[2] is True
    control.off()
    assert module.reports == [bytes.fromhex("00 A0 02 01 A3"), bytes.fromhex("00 A0 02 00 A2")]
    assert module.rejected == [] and module.states == {1: False, 2: False, 3: False, 4: False}
    assert relay.get() is None
    status = control.status()
    assert status.state == "unknown" and "cannot report its state" in status.why
    assert relay.reads_back is False


def test_lctech_invert_swaps_the_ops() -> None:
    module = LctechModule(1)
    switch = lctech_hid.build(LctechHidSection(kind="lctech-hid", device="/dev/hidraw4", invert=True),
                              PowerContext(bench="desk"))
    assert isinstance(switch, Inverted) and isinstance(switch.switch, LctechHidRelay)
    switch.switch.node.opener = module.open
    switch.set(True)
    assert module.reports == [bytes.fromhex("00 A0 01 00 A1")]
    assert switch.get() is None


def test_lctech_frames_to_one_module_are_spaced() -> None:
    module = LctechModule(2)
    gap = 0.15
    LctechHidRelay(device="/dev/hidraw-gap", channel=1, opener=module.open, frame_gap_s=gap).set(True)
    LctechHidRelay(device="/dev/hidraw-gap", channel=2, opener=module.open, frame_gap_s=gap).set(True)
    first, second = module.report_times
    assert second - first >= gap - 0.01


def test_lctech_refuses_a_node_that_is_another_device_and_names_a_missing_one(tmp_path: Path) -> None:
    usbrelay_board = LctechModule(2, info=DCTTECH)
    with pytest.raises(BenchError, match=r"LCTech HID relay /dev/hidraw4 channel 1: /dev/hidraw4 is USB device "
                                         r"16c0:05df, not 5131:2007"):
        LctechHidRelay(device="/dev/hidraw4", opener=usbrelay_board.open).set(True)
    assert usbrelay_board.reports == []
    path = str(tmp_path / "hidraw8")
    with pytest.raises(BenchError, match=rf"LCTech HID relay {path} channel 3: opening {path}: the device is not "):
        LctechHidRelay(device=path, channel=3).set(False)


# -- sections, registry, bench files -------------------------------------------------------------------
def test_both_kinds_are_registered_with_their_sections() -> None:
    kinds = registered_power_kinds()
    assert kinds["usbrelay-hid"].section is UsbRelayHidSection
    assert kinds["lctech-hid"].section is LctechHidSection


def test_a_section_without_device_or_udev_finds_the_kind_by_its_usb_id() -> None:
    section = UsbRelayHidSection(kind="usbrelay-hid")
    assert section.identity() == {"ID_VENDOR_ID": "16c0", "ID_MODEL_ID": "05df"}
    assert LctechHidSection(kind="lctech-hid").identity() == {"ID_VENDOR_ID": "5131", "ID_MODEL_ID": "2007"}
    assert UsbRelayHidSection(kind="usbrelay-hid", device="/dev/hidraw2").identity() is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"channel": 9}, "channel 9 does not exist on a HID relay module; its relays are numbered 1..8"),
    ({"channel": 3, "channels": 2}, "channel 3 does not exist on a USBRelay2"),
    ({"channels": 3}, "Input should be 1, 2, 4 or 8"),
    ({"device": "/dev/hidraw1", "udev": {"ID_PATH": "x"}}, "not both"),
    ({"udev": {"ID_VENDOR_ID": 5131}}, 'YAML read 5131 as a int: quote it, e.g. ID_VENDOR_ID: "5131"'),
    ({"udev": {}}, "udev needs at least one property"),
    ({"device": ""}, "at least 1 character"),
    ({"port": "/dev/hidraw1"}, "Extra inputs are not permitted"),
])
def test_the_usbrelay_section_refuses_what_cannot_work(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        UsbRelayHidSection.model_validate({"kind": "usbrelay-hid", **fields})


def test_a_bench_file_builds_each_relay_through_the_rig(tmp_path: Path) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  kind: usbrelay-hid\n"
                    "  udev: {ID_PATH: pci-0000:00:14.0-usb-0:3:1.0}\n  channel: 2\n  off_time_s: 3\n")
    bench = load_bench(str(path), tmp_path)
    relay = _hardware_power(bench)
    assert isinstance(relay, UsbRelayHid) and relay.channel == 2 and bench.power.off_time_s == 3
    assert relay.node.udev == {"ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"} and relay.node.device is None
    path.write_text("name: desk\nserial: {url: /dev/ttyUSB0}\npower: {kind: lctech-hid, device: /dev/hidraw1, "
                    "channel: 4, invert: true}\n")
    switch = _hardware_power(load_bench(str(path), tmp_path))
    assert isinstance(switch, Inverted) and isinstance(switch.switch, LctechHidRelay)
    assert (switch.switch.node.device, switch.switch.channel) == ("/dev/hidraw1", 4)


@pytest.mark.parametrize("example", ["usbrelay-hid.yaml", "lctech-hid.yaml"])
def test_hil_check_accepts_the_example_bench(example: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "check", f"benches/examples/{example}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"benches/examples/{example}: ok (bench file)"
    text = (ROOT / "benches" / "examples" / example).read_text()
    assert "normally-open" in text and "invert" in text and "off_time_s: 2" in text
