"""uhubctl and YKUSH ports, driven through fake executables (tests/fakebin) that print what the real tools print."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pydantic
import pytest

from harness.errors import BenchError
from harness.power import uhubctl, ykush
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.uhubctl import UhubctlPort, parse_status, port_state
from harness.power.ykush import YkushPort, status_of

FAKEBIN = Path(__file__).resolve().parent / "fakebin"


class Fakes:
    """The fake tools' state files, read back as the tools left them."""

    def __init__(self, tmp_path: Path) -> None:
        self.uhubctl_state = tmp_path / "uhubctl.json"
        self.ykush_state = tmp_path / "ykush.json"

    def hub(self) -> dict:
        return json.loads(self.uhubctl_state.read_text())

    def ykush(self) -> dict:
        return json.loads(self.ykush_state.read_text())


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    found = Fakes(tmp_path)
    monkeypatch.setenv("PATH", f"{FAKEBIN}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_UHUBCTL_STATE", str(found.uhubctl_state))
    monkeypatch.setenv("FAKE_YKUSH_STATE", str(found.ykush_state))
    return found


# -- uhubctl ------------------------------------------------------------------------------------------
def test_uhubctl_switches_the_port_and_reads_it_back(fakes: Fakes) -> None:
    control = PowerControl(UhubctlPort("1-1.4", 2), off_time_s=0.01)
    control.off()
    assert fakes.hub()["hubs"]["1-1.4"]["ports"]["2"] is False
    assert str(control.status()) == "off"
    control.on()
    assert fakes.hub()["hubs"]["1-1.4"]["ports"]["2"] is True
    assert str(control.status()) == "on"
    assert fakes.hub()["calls"][:2] == [["-l", "1-1.4", "-p", "2", "-a", "off"], ["-l", "1-1.4", "-p", "2"]]


def test_uhubctl_reads_the_bench_hub_not_its_usb3_twin(fakes: Fakes) -> None:
    port = UhubctlPort("1-1.4", 3)
    port.set(False)
    state = fakes.hub()
    state["hubs"]["2-1.4"]["ports"]["3"] = True  # the USB 3 half disagrees; the bench named the USB 2 half
    fakes.uhubctl_state.write_text(json.dumps(state))
    assert port.get() is False


def test_uhubctl_status_parsing_is_tolerant_of_every_known_form() -> None:
    output = ("Current status for hub 1-1, vendor 2001:f103, 7 ports\n"  # very old releases
              "   Port 1: 0000 off\n"
              "   Port 2: 0503 power highspeed enable connect [0403:6001 FTDI FT232R]\n"
              "Current status for hub 2-1 [2109:0817 VIA Labs, Inc. USB3.0 Hub, USB 3.00, 4 ports, ppps]\n"
              "  Port 1: 00a0 5gbps Rx.Detect\n"
              "  Port 2: 0203 power 5gbps U0 enable connect [0bda:8153 Realtek USB 10/100/1000 LAN]\n"
              "  Port 3: 02a0 off\n"
              "Sent power on request\n"
              "a line uhubctl never prints\n")
    lines = parse_status(output)
    assert [(line.location, line.port, line.powered) for line in lines] == [
        ("1-1", 1, False), ("1-1", 2, True), ("2-1", 1, False), ("2-1", 2, True), ("2-1", 3, False)]
    assert lines[1].flags == ("power", "highspeed", "enable", "connect")
    assert port_state(output, "2-1", 1) is False
    assert port_state(output, "1-1", 3) is False, "only the twin lists port 3: it is used"
    assert port_state(output, "1-1", 4) is None


def test_uhubctl_takes_the_new_status_after_an_action() -> None:
    output = ("Current status for hub 1-1.4 [hub]\n  Port 2: 0000 off\nSent power on request\n"
              "New status for hub 1-1.4 [hub]\n  Port 2: 0100 power\n")
    assert port_state(output, "1-1.4", 2) is True


def test_a_hub_that_ignores_the_request_is_caught_by_the_read_back(fakes: Fakes,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UHUBCTL_FAULT", "stuck")
    with pytest.raises(BenchError, match=r"USB hub 1-1\.4 port 2 \(uhubctl\) was switched off but reads back on"):
        PowerControl(UhubctlPort("1-1.4", 2)).off()


def test_a_hung_uhubctl_is_killed_within_its_timeout(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UHUBCTL_FAULT", "hang")
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"USB hub 1-1\.4 port 2 .*did not finish within 0\.5 s"):
        UhubctlPort("1-1.4", 2, timeout_s=0.5).set(True)
    assert time.monotonic() - started < 3


def test_an_unknown_hub_location_says_how_to_find_the_right_one(fakes: Fakes) -> None:
    with pytest.raises(BenchError, match=r"(?s)hub 1-9 port 1 .*exit status 1.*'uhubctl' alone.*No compatible devices"):
        UhubctlPort("1-9", 1).set(True)


def test_a_permission_problem_says_so(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UHUBCTL_FAULT", "permission")
    with pytest.raises(BenchError, match="udev rule"):
        UhubctlPort("1-1.4", 1).get()


def test_a_port_the_hub_lacks_is_a_bench_error(fakes: Fakes) -> None:
    with pytest.raises(BenchError, match=r"uhubctl listed no port 7 for hub 1-1\.4"):
        UhubctlPort("1-1.4", 7).get()


def test_missing_uhubctl_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match=r"USB hub 1-1 port 1 .*package 'uhubctl'"):
        UhubctlPort("1-1", 1).set(True)


def test_the_uhubctl_section_builds_an_inverted_port(fakes: Fakes) -> None:
    section = uhubctl.UhubctlSection(kind="uhubctl", location="1-1.4", port=4, invert=True, timeout_s=3)
    switch = uhubctl.BACKEND.build(section, PowerContext(bench="desk"))
    switch.set(True)
    assert fakes.hub()["hubs"]["1-1.4"]["ports"]["4"] is False
    assert switch.get() is True and "inverted" in switch.description


def test_the_uhubctl_section_says_it_cannot_power_big_boards() -> None:
    doc = uhubctl.UhubctlSection.__doc__ or ""
    assert "RK3588" in doc and "Raspberry Pi 5" in doc and "accessories" in doc


@pytest.mark.parametrize(("fields", "message"), [
    ({"location": "hub one"}, "should match pattern"),
    ({"port": 0}, "greater than or equal to 1"),
    ({"port": "2"}, "valid integer"),
])
def test_the_uhubctl_section_refuses_what_uhubctl_cannot_name(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        uhubctl.UhubctlSection.model_validate({"kind": "uhubctl", "location": "1-1.4", "port": 2, **fields})


# -- YKUSH --------------------------------------------------------------------------------------------
def test_ykush_downs_and_ups_the_port_and_reads_it_back(fakes: Fakes) -> None:
    control = PowerControl(YkushPort(2, "YK12345"), off_time_s=0.01)
    control.off()
    assert fakes.ykush()["boards"]["YK12345"]["2"] is False
    control.on()
    assert fakes.ykush()["boards"]["YK12345"]["2"] is True
    assert fakes.ykush()["calls"] == [["ykush", "-s", "YK12345", "-d", "2"], ["ykush", "-s", "YK12345", "-g", "2"],
                                      ["ykush", "-s", "YK12345", "-u", "2"], ["ykush", "-s", "YK12345", "-g", "2"]]


def test_ykush_without_a_serial_drives_the_only_board(fakes: Fakes) -> None:
    port = YkushPort(1, model="ykush3")
    port.set(False)
    assert port.get() is False
    assert fakes.ykush()["calls"][0] == ["ykush3", "-d", "1"]


def test_a_board_that_cannot_be_opened_is_an_error_although_ykushcmd_exits_0(fakes: Fakes) -> None:
    with pytest.raises(BenchError, match=r"YKUSH YK99999 port 2: .*exit status 0; Unable to open device"):
        YkushPort(2, "YK99999").set(True)


def test_ykush_status_must_name_the_port_asked_for() -> None:
    assert status_of("\n\nDownstream port 2 is ON\n\n", 2) is True
    assert status_of("\n\nDownstream port 3 is OFF\n\n", 3) is False
    assert status_of("\n\nDownstream port 0 is OFF\n\n", 2) is None


def test_a_ykush_that_ignores_the_request_is_caught_by_the_read_back(fakes: Fakes,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_YKUSH_FAULT", "stuck")
    with pytest.raises(BenchError, match="YKUSH YK12345 port 3 was switched off but reads back on"):
        PowerControl(YkushPort(3, "YK12345")).off()


def test_a_hung_ykushcmd_is_killed_within_its_timeout(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_YKUSH_FAULT", "hang")
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"YKUSH YK12345 port 1: .*did not finish within 0\.5 s"):
        YkushPort(1, "YK12345", timeout_s=0.5).get()
    assert time.monotonic() - started < 3


def test_missing_ykushcmd_names_the_upstream_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match=r"no distribution packages it.*github\.com/Yepkit/ykush"):
        YkushPort(1, "YK12345").set(True)


def test_the_ykush_section_builds_an_inverted_port(fakes: Fakes) -> None:
    section = ykush.YkushSection(kind="ykush", serial="YK12345", port=1, invert=True)
    switch = ykush.BACKEND.build(section, PowerContext(bench="desk"))
    switch.set(True)
    assert fakes.ykush()["boards"]["YK12345"]["1"] is False
    assert switch.get() is True


@pytest.mark.parametrize(("fields", "message"), [
    ({"port": 4}, "less than or equal to 3"),
    ({"serial": ""}, "at least 1 character"),
    ({"model": "ykushxs"}, "'ykush' or 'ykush3'"),
])
def test_the_ykush_section_refuses_what_the_board_cannot_do(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ykush.YkushSection.model_validate({"kind": "ykush", "port": 1, **fields})
