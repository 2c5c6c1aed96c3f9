"""The Numato USB relay driver against a double of the module's text console, over a real pty."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
import serial
from bench_doubles import hardware_bench, run_bootloader_gates, virtual_board

from harness.errors import BenchError, ConfigError
from harness.power import numato
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.numato import NumatoRelay, channel_name
from harness.sim.numato_double import NumatoRelayDouble


@pytest.fixture
def module() -> Iterator[NumatoRelayDouble]:
    with NumatoRelayDouble(16) as double:
        yield double


def talk(path: str, command: bytes) -> bytes:
    """What the module sends back for `command`, read until its prompt (or half a second)."""
    with serial.Serial(path, 19200, timeout=0.05) as port:
        port.write(command)
        received = b""
        deadline = time.monotonic() + 0.5
        while not received.endswith(b">") and time.monotonic() < deadline:
            received += port.read(64)
        return received


@pytest.mark.parametrize(("channel", "name"), [(0, "0"), (9, "9"), (10, "A"), (15, "F"), (31, "V")])
def test_channels_from_10_are_letters(channel: int, name: str) -> None:
    assert channel_name(channel) == name


@pytest.mark.parametrize("channel", [-1, 32, True])
def test_channels_the_modules_do_not_have_are_refused(channel: int) -> None:
    with pytest.raises(ConfigError, match=r"0\.\.31"):
        NumatoRelay("/dev/ttyACM0", channel)


def test_the_double_answers_like_the_board(module: NumatoRelayDouble) -> None:
    assert talk(module.pty_path, b"relay on A\r") == b"relay on A\n\r>"
    assert talk(module.pty_path, b"relay read A\r") == b"relay read A\n\ron\n\r>"
    assert talk(module.pty_path, b"relay read 1\r") == b"relay read 1\n\roff\n\r>"
    assert talk(module.pty_path, b"ver\r") == b"ver\n\r00000008\n\r>"
    assert talk(module.pty_path, b"relay read G\r") == b"relay read G\n\r>", "16-channel module: no relay G (16)"
    assert talk(module.pty_path, b"frobnicate\r") == b"frobnicate\n\rInvalid command\n\r>"


def test_on_and_off_send_the_documented_commands_and_read_back(module: NumatoRelayDouble) -> None:
    calls: list[tuple[int, bool]] = []
    module.on_change = lambda channel, on: calls.append((channel, on))
    relay = NumatoRelay(module.pty_path, 3)
    relay.set(True)
    assert relay.get() is True
    relay.set(False)
    assert relay.get() is False
    assert module.commands == ["relay on 3", "relay read 3", "relay off 3", "relay read 3"]
    assert calls == [(3, True), (3, False)]


def test_channel_10_is_relay_a_on_the_wire(module: NumatoRelayDouble) -> None:
    relay = NumatoRelay(module.pty_path, 10)
    relay.set(True)
    assert module.commands == ["relay on A"]
    assert module.states[10] is True and relay.get() is True
    assert "channel 10 (A)" in relay.description


def test_get_is_a_real_read_back_not_the_last_command(module: NumatoRelayDouble) -> None:
    relay = NumatoRelay(module.pty_path, 2)
    relay.set(True)
    module.states[2] = False  # someone pressed the module's button, or another run switched it
    assert relay.get() is False


def test_version_reads_the_firmware(module: NumatoRelayDouble) -> None:
    assert NumatoRelay(module.pty_path).version() == "00000008"


def test_a_channel_the_module_lacks_is_a_bench_error_at_read_back() -> None:
    with NumatoRelayDouble(8) as double:
        control = PowerControl(NumatoRelay(double.pty_path, 12), off_time_s=0.01)
        with pytest.raises(BenchError, match=r"channel 12 \(C\).*'relay read C'.*may not exist"):
            control.on()
        assert double.wait_commands(2) == ["relay on C", "relay read C"]


def test_invert_swaps_the_commands_but_not_the_meaning(module: NumatoRelayDouble) -> None:
    section = numato.NumatoSection(kind="numato", port=module.pty_path, channel=1, invert=True)
    switch = numato.BACKEND.build(section, PowerContext(bench="desk"))
    switch.set(True)
    assert module.states[1] is False and switch.get() is True
    switch.set(False)
    assert module.states[1] is True and switch.get() is False
    assert "inverted" in switch.description


def test_a_silent_module_is_a_bench_error_within_the_timeout(module: NumatoRelayDouble) -> None:
    module.mode = "silent"
    relay = NumatoRelay(module.pty_path, 4, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(BenchError, match=rf"Numato relay {module.pty_path} channel 4: no answer to 'relay on 4'"):
        relay.set(True)
    assert time.monotonic() - started < 1.5


def test_a_module_answering_garbage_is_a_bench_error_within_the_timeout(module: NumatoRelayDouble) -> None:
    module.mode = "garbage"
    relay = NumatoRelay(module.pty_path, 4, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"channel 4: the answer to 'relay read 4' was not .*Numato relay\?"):
        relay.get()
    assert time.monotonic() - started < 1.5


def test_error_text_after_a_switch_command_is_a_bench_error(monkeypatch: pytest.MonkeyPatch,
                                                            module: NumatoRelayDouble) -> None:
    relay = NumatoRelay(module.pty_path, 1)
    monkeypatch.setattr(relay, "exchange", lambda command: ["Invalid command"])
    with pytest.raises(BenchError, match=r"answered 'relay on 1' with 'Invalid command'"):
        relay.set(True)


def test_a_missing_device_names_the_path_and_the_channel(tmp_path: Path) -> None:
    path = str(tmp_path / "ttyACM7")
    with pytest.raises(BenchError, match=rf"Numato relay {path} channel 0: serial device {path} does not exist"):
        NumatoRelay(path).set(True)


def test_a_port_held_too_long_is_a_bench_error(module: NumatoRelayDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numato, "BUSY_RETRY_S", 0.1)
    with serial.Serial(module.pty_path, 19200, exclusive=True), pytest.raises(BenchError, match="in use"):
        NumatoRelay(module.pty_path, 1).set(True)
    assert module.commands == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"channel": 32}, "less than or equal to 31"),
    ({"channel": -1}, "greater than or equal to 0"),
    ({"channel": "2"}, "valid integer"),
    ({"port": ""}, "at least 1 character"),
    ({"timeout_s": 0}, "greater than 0"),
])
def test_the_numato_section_refuses_what_the_module_cannot_do(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        numato.NumatoSection.model_validate({"kind": "numato", "port": "/dev/ttyACM0", **fields})


def test_the_bootloader_gates_pass_through_a_numato_relay(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, \
            NumatoRelayDouble(16, on_change=lambda channel, on: channel == 11 and board.power(on)) as relay:
        bench = hardware_bench(tmp_path, board, f"{{kind: numato, port: {relay.pty_path}, channel: 11, "
                                                f"off_time_s: 0.1}}")
        done = run_bootloader_gates(bench, tmp_path / "report")
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
        assert "relay on B" in relay.commands, "channel 11 went out as relay B"
        assert relay.states[11] is False, "left off"
