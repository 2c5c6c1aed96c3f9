"""Assemble what a bench file describes into live parts: console, power switch, virtual board.

This is the only place that knows whether the far side is real; everything above gets a
`BringUpSession` and cannot tell. The virtual board is wired like a real one: its console is a
tty found again by identity when it re-enumerates, and its power goes through an LCUS relay
double on its own pty, driven by the real relay driver.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_dir
from harness.config.bench import Bench
from harness.config.power_support import power_driver_problem
from harness.config.profile import BoardProfile
from harness.console.console import Console
from harness.console.secrets import secrets_of
from harness.errors import BenchError, ConfigError
from harness.image.layout import inspect_image
from harness.image.synthetic import make_talos_like_image
from harness.power.base import PowerContext, PowerSwitch
from harness.power.lcus import LcusSection
from harness.power.registry import build_power
from harness.session import BringUpSession
from harness.sim.board import VirtualBoard
from harness.sim.relay import LcusRelayDouble
from harness.sim.transcript import load_transcript
from harness.transports.udev import serial_locator

QEMU_SOC = "qemu-virt"  # the profile of the QEMU board, the only board --bench qemu runs


def describe_bench(bench: Bench) -> str:
    return {"sim": "virtual board", "qemu": "QEMU board (real U-Boot and Linux)"}.get(bench.kind, "real hardware")


@dataclass(frozen=True)
class Rig:
    """The live parts of a bench: the session gates drive, and the virtual board behind a sim bench
    (None on hardware and QEMU) for the harness's own tests; the session never sees the board."""

    session: BringUpSession
    virtual_board: VirtualBoard | None


@contextlib.contextmanager
def bring_up(profile: BoardProfile, bench: Bench, log_dir: Path, *, image: str | None = None,
             keep_on: Callable[[], bool] = lambda: False) -> Iterator[BringUpSession]:
    """The session of `open_rig`: what gates and fixtures use."""
    with open_rig(profile, bench, log_dir, image=image, keep_on=keep_on) as rig:
        yield rig.session


@contextlib.contextmanager
def open_rig(profile: BoardProfile, bench: Bench, log_dir: Path, *, image: str | None = None,
             keep_on: Callable[[], bool] = lambda: False) -> Iterator[Rig]:
    """Switch the board off first, open the console before anything is powered, and leave it off afterwards.

    The first action is the power-off: a run killed with SIGKILL could not switch its relay off,
    so the board may still be on from the last run. `keep_on`, asked at the end, leaves a failed
    board powered for a person to look at (`--keep-on-failure`).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        board: VirtualBoard | None = None
        url: str | Callable[[], str | None]
        media: list[str] = [image] if image else []
        if bench.kind == "sim":
            board, power = _virtual_board(profile, bench, log_dir, image, stack)
            url = lambda: board.pty_path  # noqa: E731 - found again after re-enumeration, like a udev identity
            off_time = 0.05
            media = [str(m.image) for m in board.mmcs if m.image is not None]
        elif bench.kind == "qemu":
            url, power = _qemu_board(bench, log_dir, stack)
            off_time = 0.0
        else:
            assert bench.serial is not None  # the bench schema requires it for hardware
            url = bench.serial.url if bench.serial.url is not None else serial_locator(bench.serial.udev or {})
            power = _hardware_power(bench)
            off_time = bench.power.off_time_s if bench.power else 2.0
        if callable(close := getattr(power, "close", None)):
            stack.callback(close)  # a GPIO line is released, a connection closed, after the board is off
        power.set(False)
        console = Console(url, profile.console.firmware.baud, log_dir,
                          char_delay_s=profile.console.char_delay_ms / 1000,
                          where=f"bench '{bench.name}' serial {_serial_identity(bench)}".rstrip(),
                          secrets=secrets_of(bench))
        console.open()
        stack.callback(console.close)
        console.log.event(f"power off before the run ({power.description}): a killed run may have left it on")
        maskrom = (build_power(bench.maskrom, PowerContext(bench=bench.name, secret=bench.secret))
                   if bench.maskrom is not None and bench.kind == "hardware" else None)
        session = BringUpSession(profile, bench, console, power, off_time_s=off_time, maskrom=maskrom,
                                 media_finding=lambda: _missing_loader(profile, media))
        stack.callback(_leave_off, session, keep_on)
        yield Rig(session, board)


def _virtual_board(profile: BoardProfile, bench: Bench, log_dir: Path, image: str | None,
                   stack: contextlib.ExitStack) -> tuple[VirtualBoard, PowerSwitch]:
    spec = bench.sim
    assert spec is not None
    board_log = stack.enter_context((log_dir / "virtual-board.log").open("w", encoding="utf-8"))

    def note(message: str) -> None:
        board_log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        board_log.flush()

    sd_image, emmc_image = image or spec.image, spec.emmc_image
    if sd_image is None and emmc_image is None:
        # Nothing given: a Talos image on the microSD, as bring-up starts, and a blank eMMC. It is the
        # same every time, so it is made once (not in the report directory, which gets attached to releases).
        default = cache_dir("sim") / "talos-v1.9.1.img"
        if not default.is_file():
            make_talos_like_image(default.with_suffix(f".partial-{os.getpid()}")).rename(default)
        sd_image = str(default)
    board = VirtualBoard(profile, load_transcript(profile.name, spec.transcript), ram_mb=bench.ram_mb or 8192,
                         time_scale=spec.time_scale, faults=spec.faults, sd_image=sd_image, emmc_image=emmc_image,
                         nvme=spec.nvme, kernel_args=spec.kernel_args, drop_fast_keys=spec.drop_fast_keys, log=note)
    stack.callback(board.close)
    note(f"virtual {profile.name}: console {board.pty_path}, sd={sd_image}, emmc={emmc_image}, "
         f"faults={', '.join(board.faults) or 'none'}")
    relay = stack.enter_context(LcusRelayDouble(channels=1, on_change=lambda _channel, on: board.power(on)))
    # Switched like any bench: the registered LCUS backend, built from a bench section.
    return board, build_power(LcusSection(kind="lcus", port=relay.pty_path, channel=1),
                              PowerContext(bench=bench.name))


def _qemu_board(bench: Bench, log_dir: Path, stack: contextlib.ExitStack) -> tuple[str, PowerSwitch]:
    from harness.power.qmp import QmpSection
    from harness.qemu.assets import build_assets
    from harness.qemu.machine import QemuMachine

    spec = bench.qemu
    assert spec is not None
    with (log_dir / "qemu-assets.log").open("w", encoding="utf-8") as build_log:
        assets = build_assets(cache_dir("qemu"), variant=spec.variant,
                              log=lambda line: print(line, file=build_log, flush=True))
    machine = QemuMachine(assets, log_dir / "qemu", memory_mb=spec.memory_mb).start()
    stack.callback(machine.close)
    # A qemu bench names no switch (or `power: {kind: qmp}`); either way the machine's own QMP switch.
    section = bench.power if bench.power is not None else QmpSection()
    return machine.console_url, build_power(section, PowerContext(bench=bench.name, qemu=machine))


def _missing_loader(profile: BoardProfile, media: list[str]) -> str | None:
    """Why a silent board is the image's fault: the boot ROM finds no loader on any medium it was given."""
    if profile.loader is None or not media:
        return None
    if any(inspect_image(path).rockchip_loader for path in media):
        return None
    return (f"no loader found on the SD or eMMC image: the board is in MaskROM (the boot ROM found no "
            f"{profile.loader} on {', '.join(media)})")


def _serial_identity(bench: Bench) -> str:
    if bench.serial is None:
        return ""
    return f"url {bench.serial.url}" if bench.serial.url else f"udev {bench.serial.udev}"


def _leave_off(session: BringUpSession, keep_on: Callable[[], bool]) -> None:
    if keep_on():
        session.console.log.event("the board is left on for a person to look at (--keep-on-failure)")
        return
    try:
        session.power_off()
    except BenchError as exc:
        session.console.log.event(f"could not switch the board off at the end: {exc}")


def _hardware_power(bench: Bench) -> PowerSwitch:
    """The bench's switch, made by the factory its kind registered (harness.power.registry)."""
    if bench.power is None:
        raise ConfigError(power_driver_problem(bench) or f"bench '{bench.name}' has no power section")
    return build_power(bench.power, PowerContext(bench=bench.name, secret=bench.secret))
