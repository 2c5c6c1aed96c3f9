"""A virtual board behind a pty: boots what is on its virtual storage, stage by stage.

The harness opens the pty exactly as it opens a USB UART, so every driver above the transport is
exercised unchanged. The board is silent while off, starts from the boot ROM at power-on and
forgets everything (environment, prompt, half-typed line) at power-off, like hardware. What it
prints is its transcript (data); this module only decides which lines, when, and in what order.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.profile import BoardProfile
from harness.sim.applicability import check_transcript_faults
from harness.sim.faults import FEATURE_FAULTS, validate_faults
from harness.sim.storage import VirtualMmc
from harness.sim.transcript import Line, StageScript, Transcript, fill
from harness.sim.uboot_shell import UBootShell

CTRL_C = 0x03
MASKROM_USB_ID = ("2207", "350b")  # RK3588 in MaskROM; bcdUSB bit 0 clear tells it from loader mode
SIDEROLINK_ADDRESS = "fdae:41e4:649b:9303::a"
UART_ENUMERATE_S = 0.3  # wall-clock, not scaled: the host needs this long to see the new tty
KERNEL_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\] ")  # the kernel's `[    1.234567] ` line prefix


@dataclass(frozen=True)
class UsbDevice:
    vendor: str
    product: str
    bcd_usb: int
    description: str


class VirtualBoard:
    def __init__(self, profile: BoardProfile, transcript: Transcript, *, ram_mb: int = 8192,
                 time_scale: float = 0.05, faults: Iterable[str] = (), sd_image: str | Path | None = None,
                 emmc_image: str | Path | None = None, nvme: bool = False, kernel_args: Iterable[str] = (),
                 drop_fast_keys: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.profile = profile
        self.transcript = transcript
        self.time_scale = time_scale
        self.faults = validate_faults(list(faults))
        check_transcript_faults(profile.name, transcript, self.faults)
        self.drop_fast_keys = drop_fast_keys
        self.events: list[str] = []
        self._log = log
        self.kernel_args = list(kernel_args)
        if "siderolink-fail" in self.faults and not any(a.startswith("siderolink.api=") for a in self.kernel_args):
            self.kernel_args.append("siderolink.api=https://omni.example.invalid:8090?jointoken=sim-placeholder")
        # An SD slot holds a card only when an image is given: the kernel must not find a card U-Boot said
        # was absent. A soldered eMMC is always there (blank, when no image is given).
        self.features = {"eth", "usb", "emmc"} | ({"sd"} if sd_image else set()) | ({"nvme"} if nvme else set())
        if any(a.startswith("siderolink.api=") for a in self.kernel_args):
            self.features.add("siderolink")
        self.features -= {feature for fault, feature in FEATURE_FAULTS.items() if fault in self.faults}
        self.values: dict[str, Any] = {**transcript.vars, "ram_mb": ram_mb, "ram_gib": f"{ram_mb / 1024:g}",
                                       "channel_mb": ram_mb // 4, "ram_kb": ram_mb * 1024}
        for fault in self.faults:
            script = transcript.faults.get(fault)
            if script is not None:
                self.values.update(script.vars)
        self.values["cmdline"] = " ".join([str(self.values.get("cmdline_base", "")), *self.kernel_args]).strip()
        self.values["siderolink_api"] = next((a.split("=", 1)[1].split("?")[0] for a in self.kernel_args
                                              if a.startswith("siderolink.api=")), "")
        self.prompt = profile.uboot.prompt
        self.mmcs = [VirtualMmc(m.index, m.kind, m.controller,
                                image=Path(sd_image if m.kind == "sd" else emmc_image)
                                if (sd_image if m.kind == "sd" else emmc_image) else None,
                                present=m.kind in self.features)
                     for m in profile.uboot.mmc]
        self.maskrom = False
        self.maintenance: Any = None  # MaintenanceEndpoint while in maintenance mode
        self.power_on_count = 0
        self._rng = random.Random(1)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._generation = 0  # bumped at each power change; threads of an older one stop
        self._powered = False
        self._state = "off"
        self._kernel_clock = 0.0  # the latest kernel timestamp printed since power-on, in board seconds
        self._interrupted = threading.Event()
        self._line = bytearray()
        self._shell = self._new_shell()
        self._held_slave = -1
        self._master, self._slave = self._open_pty()
        self._input = threading.Thread(target=self._read_keys, name="sim-keys", daemon=True)
        self._input.start()

    # -- the UART --------------------------------------------------------------------------------
    def _open_pty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or newline translation: the firmware echoes by itself
        self.pty_path: str | None = os.ttyname(slave)
        return master, slave

    def _close_pty(self, *, hold_name: bool = False) -> None:
        """Hang the port up. `hold_name` keeps its slave open until the next port is open, so the
        kernel cannot hand the same /dev/pts number out again: the UART comes back under another name."""
        self.pty_path = None
        self._release_held_name()
        if hold_name:
            self._held_slave, self._slave = self._slave, -1
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def _release_held_name(self) -> None:
        held, self._held_slave = self._held_slave, -1
        if held >= 0:
            with contextlib.suppress(OSError):
                os.close(held)

    @property
    def uart_present(self) -> bool:
        return self.pty_path is not None

    def _note(self, message: str) -> None:
        """The board's own log: what a person watching it would want to know (bad image, MaskROM)."""
        self.events.append(message)
        if self._log is not None:
            self._log(message)

    # -- power ---------------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def state(self) -> str:
        return self._state

    def power(self, on: bool) -> None:
        if on == self._powered:
            return
        self._generation += 1
        self._powered = on
        self._interrupted.clear()
        self._line.clear()
        self._shell = self._new_shell()
        self._state = "off"
        self.maskrom = False
        self._kernel_clock = 0.0
        self._stop_maintenance()
        if not on:
            if "uart-reenumerate" in self.faults and self.uart_present:
                self._close_pty(hold_name=True)  # the board-powered USB UART goes with the board
            return
        self.power_on_count += 1
        threading.Thread(target=self._power_on, args=(self._generation,), name="sim-boot", daemon=True).start()

    def _power_on(self, generation: int) -> None:
        if not self.uart_present:
            time.sleep(UART_ENUMERATE_S)
            if not self._alive(generation):
                return
            self._master, self._slave = self._open_pty()
            self._release_held_name()
            self._note(f"USB UART enumerated again as {self.pty_path}")
            time.sleep(UART_ENUMERATE_S)
        self._boot(generation)

    def close(self) -> None:
        self._stop.set()
        self._generation += 1
        self._powered = False
        self._stop_maintenance()
        self._input.join(timeout=2)
        self._close_pty()

    def usb_devices(self) -> list[UsbDevice]:
        """What the host's USB bus sees of this board: the MaskROM device when the boot ROM fell back."""
        if self._powered and self.maskrom:
            return [UsbDevice(*MASKROM_USB_ID, bcd_usb=0x0200, description="Rockchip RK3588 in MaskROM")]
        return []

    # -- output --------------------------------------------------------------------------------
    def _alive(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _emit(self, text: str, generation: int) -> bool:
        if not self._alive(generation):
            return False
        data = text.replace("\n", "\r\n").encode("utf-8", errors="replace")
        with self._write_lock:
            try:
                os.write(self._master, data)
            except OSError:
                return False
        return True

    def _sleep(self, seconds: float, generation: int) -> bool:
        """Sleep in board time; False once the board lost power meanwhile."""
        if seconds > 0:
            self._stop.wait(seconds * self.time_scale)
        return self._alive(generation)

    def _fill(self, text: str) -> str:
        return fill(text, self.values)

    def _print(self, line: str, delay_ms: float, generation: int) -> bool:
        text = self._fill(line)
        if not self._sleep(delay_ms / 1000, generation) or not self._emit(text + "\n", generation):
            return False
        if stamp := KERNEL_STAMP.match(text):
            self._kernel_clock = max(self._kernel_clock, float(stamp.group(1)))
        if "serial-noise" in self.faults and self._rng.random() < 0.3:
            noise = bytes(self._rng.choice(b"\xff\xfe\x80\x1b\x00\x07\x9f~#") for _ in range(self._rng.randint(1, 12)))
            with self._write_lock, contextlib.suppress(OSError):
                os.write(self._master, noise + b"\r\n")
        return True

    # -- boot ----------------------------------------------------------------------------------
    def _boot(self, generation: int) -> None:
        for mmc in self.mmcs:
            problem = mmc.insert()
            if problem:
                self._note(problem)
        if self.profile.loader == "rockchip-idbloader" and not any(m.has_loader for m in self.mmcs):
            self.maskrom = True
            self._state = "maskrom"
            self._note("no valid Rockchip loader (RKNS at sector 64) on any medium: boot ROM waits in MaskROM")
            return
        for stage in self.transcript.stages[: self.transcript.index("u-boot") + 1]:
            if not self._play(stage, generation):
                return
            if stage.autoboot is not None and self._countdown(stage, generation):
                self._state = "u-boot-prompt"
                self._emit("<INTERRUPT>\n" + self.prompt, generation)
                return
        if self._alive(generation):
            self._run_bootcmd(generation)

    def _run_bootcmd(self, generation: int) -> None:
        """What `bootcmd` does: boot the first medium with an EFI partition, SD before eMMC.

        The order follows Rockchip's `boot_targets=mmc1 mmc0` (unverified for every vendor U-Boot);
        the boot ROM's own order only matters here for whether any loader exists at all.
        """
        device = next((m for m in sorted(self.mmcs, key=lambda m: m.kind != "sd") if m.bootable), None)
        if device is None:
            self._state = "u-boot-prompt"
            for line in self.transcript.no_bootable:
                self._emit(self._fill(line) + "\n", generation)
            self._emit(self.prompt, generation)
            return
        assert device.facts is not None
        if device.facts.talos_version is None:
            self._state = "grub"
            self._emit("error: file `/A/vmlinuz' not found.\n", generation)
            self._note(f"{device.label} image has an EFI partition but no Talos boot entry")
            return
        self.values["talos_version"] = device.facts.talos_version
        for stage in self.transcript.stages[self.transcript.index("u-boot") + 1:]:
            if not self._play(stage, generation):
                return
        self._state = "talos-maintenance" if self.maintenance is not None else "booted"

    def _play(self, stage: StageScript, generation: int) -> bool:
        """Print a stage, as faults change it; False when the board stopped (hang or power loss)."""
        self._state = stage.name
        entries = [e for e in stage.entries() if e.when is None or e.when in self.features]
        cut, fault_lines, then, faulted = len(entries), [], "continue", False
        for fault in self.faults:
            script = self.transcript.faults.get(fault)
            if script is not None and script.stage == stage.name:
                cut = min(cut, script.after if script.after is not None else len(entries))
                fault_lines, then, faulted = script.lines, script.then, True
            elif fault == f"hang:{stage.name}":
                cut, fault_lines, then, faulted = len(entries) // 2, [], "hang", True
        for entry in entries[:cut]:
            if not self._entry(entry, stage, generation):
                return False
        for line in fault_lines:
            if not self._print(line, stage.delay_ms, generation):
                return False
        if faulted and then == "hang":
            self._state = f"hung in {stage.name}"
            self._note(f"fault: the board stops in stage {stage.name}")
            return False
        return self._alive(generation)

    def _entry(self, entry: Line, stage: StageScript, generation: int) -> bool:
        delay = entry.delay_ms if entry.delay_ms is not None else stage.delay_ms
        if entry.do == "maintenance":
            return self._start_maintenance(delay, generation)
        return self._print(entry.text or "", delay, generation)

    def _countdown(self, stage: StageScript, generation: int) -> bool:
        """Print the countdown; True when a key the variant honours stopped it."""
        assert stage.autoboot is not None
        auto = stage.autoboot
        self._state = "autoboot"
        remaining = int(auto.seconds)
        self._emit(auto.text.format(n=remaining), generation)
        ticks = max(1, round(auto.seconds / 0.01))
        for tick in range(ticks):
            if self._interrupted.is_set():
                self._emit("\n", generation)
                return True
            if not self._sleep(0.01, generation):
                return False
            left = int(auto.seconds - (tick + 1) * 0.01 + 0.999)
            if left != remaining:
                remaining = left
                self._emit(f"\b\b\b{remaining:2d} ", generation)
        self._emit("\n", generation)
        return False

    # -- maintenance mode ------------------------------------------------------------------------
    def _start_maintenance(self, delay_ms: float, generation: int) -> bool:
        from harness.sim.maintenance import MaintenanceEndpoint

        # Talos prints the block again (when its addresses change) with the same certificate: reuse it.
        endpoint = self.maintenance or MaintenanceEndpoint()
        if not self._alive(generation):
            if endpoint is not self.maintenance:
                endpoint.close()
            return False
        self.maintenance = endpoint
        # With SideroLink configured the API listens on the SideroLink address only; without a link
        # (no carrier, or SideroLink failing) the board has no address to list.
        if "siderolink" in self.features:
            addresses = [] if "siderolink-fail" in self.faults else [SIDEROLINK_ADDRESS]
        else:
            addresses = [str(self.values.get("ip"))] if "eth" in self.features else []
        for line in endpoint.console_lines(addresses):
            if not self._print(f"{self._next_stamp(delay_ms)} {line}", delay_ms, generation):
                return False
        self._state = "talos-maintenance"
        return True

    def _next_stamp(self, delay_ms: float) -> str:
        """The kernel-log stamp of a line printed `delay_ms` after the last one: later than every stamp before it.

        Talos' lines reach the console through the kernel log, whose clock only moves forward; a
        parser or a person ordering lines by it must never see time run backwards.
        """
        seconds = self._kernel_clock + max(delay_ms, 1.0) / 1000
        return f"[{seconds:12.6f}]"

    def _stop_maintenance(self) -> None:
        endpoint, self.maintenance = self.maintenance, None
        if endpoint is not None:
            endpoint.close()

    # -- keyboard --------------------------------------------------------------------------------
    def _read_keys(self) -> None:
        while not self._stop.is_set():
            master = self._master
            try:
                ready, _, _ = select.select([master], [], [], 0.1) if master >= 0 else ([], [], [])
                if not ready:
                    if master < 0:
                        time.sleep(0.05)
                    continue
                data = os.read(master, 4096)
            except OSError:
                time.sleep(0.05)
                continue
            if not self._powered:
                continue
            if self.drop_fast_keys and len(data) > 2 and self._state == "u-boot-prompt":
                # An RK3588 UART FIFO overruns on keys typed with no gap: every fourth one is lost.
                data = bytes(b for i, b in enumerate(data) if i % 4 != 3)
            for byte in data:
                self._key(byte)

    def _key(self, byte: int) -> None:
        if self._state == "autoboot":
            stage = self.transcript.stage("u-boot")
            any_key = stage is not None and stage.autoboot is not None and stage.autoboot.variant == "mainline"
            if byte == CTRL_C or any_key:
                self._interrupted.set()
        elif self._state == "u-boot-prompt":
            self._prompt_key(byte)
        # Keys before U-Boot runs, or after the kernel took over, fall on deaf ears.

    def _prompt_key(self, byte: int) -> None:
        generation = self._generation
        if byte == CTRL_C:
            self._line.clear()
            self._emit("<INTERRUPT>\n" + self.prompt, generation)
        elif byte in (0x0D, 0x0A):
            command = self._line.decode(errors="replace").strip()
            self._line.clear()
            self._emit("\n", generation)
            if command:
                self._emit(self._shell.run(command), generation)
            if self._state == "u-boot-prompt":
                self._emit(self.prompt, generation)
        elif byte in (0x08, 0x7F):
            if self._line:
                self._line.pop()
                self._emit("\b \b", generation)
        elif byte >= 0x20:
            self._line.append(byte)
            self._emit(chr(byte), generation)

    def _new_shell(self) -> UBootShell:
        shell = UBootShell(mmcs=self.mmcs, canned=self.transcript.commands, fill=self._fill,
                           on_boot=self._boot_from_prompt, on_reset=self._reset)
        shell.env["baudrate"] = str(self.profile.console.firmware.baud)
        return shell

    def _boot_from_prompt(self) -> None:
        generation = self._generation
        self._state = "booting"
        threading.Thread(target=self._run_bootcmd, args=(generation,), name="sim-boot", daemon=True).start()

    def _reset(self) -> None:
        def cycle() -> None:
            time.sleep(0.01)
            self.power(False)
            self.power(True)
        self._state = "resetting"
        threading.Thread(target=cycle, name="sim-reset", daemon=True).start()
