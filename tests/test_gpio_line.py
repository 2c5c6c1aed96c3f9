"""The gpiod power kind: one libgpiod v2 line, held requested as an output while the session runs.

This machine's kernel has no GPIO support (no /dev/gpiochip*, no gpio-sim module to create one),
so the line is a double of the v2 request object (`gpiod.request_lines` → `LineRequest` with
`set_value`, `get_value`, `release`) that behaves as the kernel does: it refuses a line someone
else holds, applies active-low between the logical value and the pin's level, and reads back the
logical value. The real `gpiod` package supplies LineSettings/Value, and is asked for a real chip
where no chip is needed to see the answer (a chip that does not exist).
"""

from __future__ import annotations

import errno
import gc
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gpiod
import pytest
from gpiod.line import Direction, Value
from sim_support import fast_profile
from support import ROOT

from harness.config.bench import load_bench
from harness.errors import BenchError, ConfigError
from harness.image.synthetic import make_talos_like_image
from harness.power import gpio_line
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.gpio_line import GpiodSection, GpioLine, build
from harness.rig import bring_up
from harness.sim.board import VirtualBoard
from harness.sim.transcript import load_transcript

CHIP = "/dev/gpiochip0"


@dataclass
class KernelLine:
    """The kernel's side of one line: the pin's electrical level, who holds it, and every request made."""

    on_level: Callable[[int], object] = lambda _level: None
    level: int | None = None  # 1 = high, 0 = low; None until first driven
    holder: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    stuck_at: int | None = None  # a pin shorted to a rail reads this level whatever is driven
    refuse: OSError | None = None

    def drive(self, level: int) -> None:
        self.level = level
        self.on_level(level)

    def request_lines(self, path: str, consumer: str | None = None,
                      config: dict[Any, gpiod.LineSettings | None] | None = None) -> RequestDouble:
        """gpiod.request_lines as the kernel answers it, for one chip with one interesting line."""
        assert config is not None and len(config) == 1
        ((offset, settings),) = config.items()
        assert settings is not None
        self.requests.append({"path": path, "consumer": consumer, "offset": offset, "settings": settings})
        if self.refuse is not None:
            raise self.refuse
        if self.holder is not None:
            raise OSError(errno.EBUSY, "Device or resource busy")
        assert settings.direction == Direction.OUTPUT
        self.holder = consumer
        request = RequestDouble(self, offset, settings.active_low)
        self.drive(request.level_of(settings.output_value))
        return request


@dataclass
class RequestDouble:
    """A gpiod.LineRequest for one output line."""

    kernel: KernelLine
    offset: int | str
    active_low: bool
    released: bool = False

    def level_of(self, value: Value) -> int:
        return int((value == Value.ACTIVE) != self.active_low)

    def set_value(self, line: int | str, value: Value) -> None:
        assert not self.released and line == self.offset
        self.kernel.drive(self.level_of(value))

    def get_value(self, line: int | str) -> Value:
        assert not self.released and line == self.offset
        level = self.kernel.stuck_at if self.kernel.stuck_at is not None else self.kernel.level
        return Value.ACTIVE if bool(level) != self.active_low else Value.INACTIVE

    def release(self) -> None:
        assert not self.released, "released twice"
        self.released = True
        self.kernel.holder = None


def test_the_line_is_requested_once_as_an_output_with_the_first_value() -> None:
    kernel = KernelLine()
    switch = GpioLine("gpiochip0", 17, request_lines=kernel.request_lines)
    assert switch.get() is None, "nothing is requested (nor read) before the first set"
    switch.set(False)
    (first,) = kernel.requests
    assert first["path"] == CHIP and first["offset"] == 17 and first["consumer"] == "talos-harness"
    assert first["settings"].output_value == Value.INACTIVE, "requested already off: no glitch through on"
    assert kernel.level == 0 and switch.get() is False
    switch.set(True)
    switch.set(False)
    switch.set(True)
    assert len(kernel.requests) == 1, "the request is held, not made per set"
    assert kernel.level == 1 and switch.get() is True and kernel.holder == "talos-harness"
    switch.close()
    assert kernel.holder is None and switch.get() is None
    switch.close()  # closing twice is harmless
    switch.set(False)
    assert len(kernel.requests) == 2 and kernel.level == 0, "a closed switch requests the line again"


def test_active_low_drives_the_pin_low_for_on_and_still_reads_on() -> None:
    kernel = KernelLine()
    with GpioLine("/dev/gpiochip4", "RELAY_EN", active_low=True, request_lines=kernel.request_lines) as switch:
        switch.set(True)
        assert kernel.requests[0]["settings"].active_low is True and kernel.requests[0]["offset"] == "RELAY_EN"
        assert kernel.level == 0 and switch.get() is True
        switch.set(False)
        assert kernel.level == 1 and switch.get() is False
        assert switch.description == "GPIO /dev/gpiochip4 line RELAY_EN (active-low)"
    assert kernel.holder is None, "leaving the with-block released the line"


def test_a_line_that_reads_back_wrong_is_a_bench_error() -> None:
    """A pin shorted low (or driven by someone else) reads back off after on: PowerControl says so."""
    kernel = KernelLine(stuck_at=0)
    control = PowerControl(GpioLine(CHIP, 5, request_lines=kernel.request_lines), off_time_s=0)
    control.off()
    with pytest.raises(BenchError, match="switched on but reads back off"):
        control.on()
    assert control.status().state == "off", "the status is the read-back, not what was asked"


def test_a_dropped_switch_lets_go_of_the_line() -> None:
    kernel = KernelLine()
    switch = GpioLine(CHIP, 3, request_lines=kernel.request_lines)
    switch.set(True)
    del switch
    gc.collect()
    assert kernel.holder is None


@pytest.mark.parametrize(("refusal", "message"), [
    (OSError(errno.EBUSY, "Device or resource busy"), "another process holds it .*gpioinfo -c /dev/gpiochip0"),
    (PermissionError(errno.EACCES, "Permission denied"), "may not open /dev/gpiochip0.*group"),
    (ValueError("line offset of out range"), "out range \\(power.line\\)"),
])
def test_a_refused_request_is_a_bench_error_saying_why(refusal: Exception, message: str) -> None:
    kernel = KernelLine(refuse=refusal)  # type: ignore[arg-type]
    with pytest.raises(BenchError, match=f"GPIO /dev/gpiochip0 line 17: .*{message}"):
        GpioLine(CHIP, 17, request_lines=kernel.request_lines).set(False)


def test_a_line_held_by_another_run_is_refused() -> None:
    kernel = KernelLine()
    holder = GpioLine(CHIP, 17, request_lines=kernel.request_lines)
    holder.set(False)
    with pytest.raises(BenchError, match="another process holds it"):
        GpioLine(CHIP, 17, request_lines=kernel.request_lines).set(False)


def test_the_real_gpiod_refuses_a_chip_this_host_does_not_have() -> None:
    """The real library, on this machine without GPIO: both refusals must name the chip and the fix."""
    with pytest.raises(BenchError, match=r"no such GPIO chip /dev/gpiochip0 \(power.chip\).*gpiodetect"):
        GpioLine("gpiochip0", 17).set(False)
    with pytest.raises(BenchError, match=r"/dev/null is not a GPIO character device"):
        GpioLine("/dev/null", 17).set(False)


def test_a_missing_gpiod_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    section = GpiodSection(kind="gpiod", chip="gpiochip0", line=17)
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod raises ImportError
    with pytest.raises(ConfigError) as caught:
        build(section, PowerContext(bench="desk"))
    assert "pip install gpiod" in str(caught.value) and "python3-libgpiod is the v1 API" in str(caught.value)


def test_the_v1_bindings_are_refused_as_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = types.ModuleType("gpiod")
    v1.Chip = object  # type: ignore[attr-defined]  # v1 has Chip and chip.get_line(), no request_lines
    v1.__version__ = "1.6.3"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gpiod", v1)
    with pytest.raises(ConfigError, match=r"\(1\.6\.3, .*\) is the v1 API .*pip install gpiod"):
        build(GpiodSection(kind="gpiod", chip="gpiochip0", line=17), PowerContext(bench="desk"))


@pytest.mark.parametrize(("power", "message"), [
    ("{kind: gpiod, chip: gpiochip0, line: -1}", "offset from 0"),
    ("{kind: gpiod, chip: gpiochip0, line: ''}", "must not be empty"),
    ("{kind: gpiod, chip: gpiochip0, line: true}", "valid integer"),
    ("{kind: gpiod, line: 17}", "chip"),
    ("{kind: gpiod, chip: gpiochip0, line: 17, invert: true}", "invert"),
])
def test_the_bench_section_is_checked_in_the_file(tmp_path: Path, power: str, message: str) -> None:
    bench = tmp_path / "desk.yaml"
    bench.write_text(f"name: desk\nkind: hardware\nserial: {{url: /dev/null}}\npower: {power}\n")
    with pytest.raises(ConfigError, match=message):
        load_bench(str(bench), tmp_path)


def test_a_hardware_bench_with_a_gpio_line_drives_the_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench file's section, built by the registry, powers a virtual board through an active-low relay."""
    profile = fast_profile("nanopi-m6")
    board = VirtualBoard(profile, load_transcript("nanopi-m6"), time_scale=0.05,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    kernel = KernelLine(on_level=lambda level: board.power(level == 0))  # the relay energises on a low input
    with_double = types.SimpleNamespace(request_lines=kernel.request_lines, LineSettings=gpiod.LineSettings,
                                        line=gpiod.line)
    monkeypatch.setattr(gpio_line, "load_gpiod", lambda: with_double)
    try:
        bench_file = tmp_path / "desk.yaml"
        bench_file.write_text(f"name: desk\nkind: hardware\nserial: {{url: {board.pty_path}}}\n"
                              "power: {kind: gpiod, chip: gpiochip0, line: 17, active_low: true, off_time_s: 0.1}\n"
                              "ram_mb: 8192\n")
        with bring_up(profile, load_bench(str(bench_file), tmp_path), tmp_path / "logs") as session:
            assert not board.powered and kernel.level == 1, "requested off first: input high, relay released"
            assert session.uboot_prompt().exec("version").ok
            assert board.powered and kernel.holder == "talos-harness:desk"
        assert not board.powered and kernel.level == 1, "the session leaves the board off"
        assert len(kernel.requests) == 1, "one request for the whole session"
    finally:
        board.close()


def test_the_example_bench_passes_hil_check() -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "check", "benches/examples/gpiod.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok (bench" in done.stdout, done.stderr
