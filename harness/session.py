"""The bring-up session: drives the board to the stage a gate needs, with the fewest power cycles.

It owns the only power-on in the run: gates ask for a stage, and when the board is already
there (or the evidence of the current boot already holds what they need) nothing is switched.
Every stage marker's arrival is written to the boot timeline, and the raw-log position of the
last power-on bounds the capture that passive gates (DDR, kernel facts) read.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from harness.config.bench import Bench
from harness.config.profile import STAGES, BoardProfile, stage_index
from harness.console.console import Console
from harness.errors import BenchError, ConsoleTimeout
from harness.power.base import PowerSwitch
from harness.uboot import UBoot


@dataclass(frozen=True)
class TimelineEntry:
    power_on: int
    stage: str
    seconds: float
    line: str


@dataclass
class BringUpSession:
    profile: BoardProfile
    bench: Bench
    console: Console
    power: PowerSwitch
    off_time_s: float = 2.0
    stage: str = "off"
    power_ons: int = 0
    timeline: list[TimelineEntry] = field(default_factory=list)
    autoboot_variant: str | None = None
    _boot_position: int = 0
    _powered_at: float = 0.0
    _uboot: UBoot | None = None
    virtual_board: Any = None  # the VirtualBoard behind a sim bench, for its own tests; None on hardware

    # -- power --------------------------------------------------------------------------------
    def power_off(self) -> None:
        self.power.set(False)
        self.console.log.event("power off")
        self.stage = "off"

    def power_on(self) -> None:
        """Switch on with a clean slate: old output must not satisfy the new boot's waits."""
        if self.stage != "off" or self.power.get() is not False:
            self.power_off()
            time.sleep(self.off_time_s)
        self.console.discard_pending()
        self._boot_position = self.console.raw_position()
        self.power_ons += 1
        self.console.log.event(f"power on (#{self.power_ons})")
        self._powered_at = time.monotonic()
        self.power.set(True)

    def boot_capture(self) -> str:
        """Cleaned console text since the last power-on: the evidence of the current boot."""
        return self.console.capture_since(self._boot_position)

    # -- stages --------------------------------------------------------------------------------
    def _bad_patterns(self) -> list[tuple[str, str]]:
        reached = stage_index(self.stage)
        return [(b.name, b.pattern) for b in self.profile.bad_patterns if stage_index(b.from_stage) <= reached]

    def _record(self, stage: str, arrived: float, line: str) -> None:
        self.stage = stage
        self.timeline.append(TimelineEntry(self.power_ons, stage, arrived - self._powered_at, line.strip()))
        self.console.log.event(f"stage {stage} at {arrived - self._powered_at:.3f} s after power-on")

    def uboot_prompt(self) -> UBoot:
        """The board held at the U-Boot prompt; powers on only if it is not there already."""
        if self.stage == "u-boot" and self._uboot is not None:
            return self._uboot
        self.power_on()
        self._drive_to_prompt()
        self._uboot = UBoot(self.console, self.profile)
        self._uboot.sync()
        return self._uboot

    def _drive_to_prompt(self) -> None:
        """Send the interrupt from power-on until the prompt, timestamping stage markers on the way."""
        uboot = self.profile.uboot
        markers = [(s, re.compile(p, re.MULTILINE)) for s, p in sorted(
            self.profile.stage_markers.items(), key=lambda item: stage_index(item[0]))
            if stage_index(s) <= stage_index("u-boot")]
        autoboot = [(a.name, re.compile(a.pattern, re.MULTILINE)) for a in uboot.autoboot]
        prompt = re.compile(re.escape(uboot.prompt))
        interval = uboot.interrupt_every_ms / 1000
        waiting_for = markers[0][0] if markers else "u-boot"
        stage_started = time.monotonic()
        while True:
            self.console.send(uboot.interrupt, char_delay_s=0)
            found = self.console.poll([prompt] + [p for _, p in markers] + [p for _, p in autoboot], interval,
                                      stage=self.stage, bad=self._bad_patterns())
            if found is None:
                self._check_stage_deadline(waiting_for, stage_started)
                continue
            if found.index == 0:
                if self.stage != "u-boot":
                    self._record("u-boot", found.arrived, found.text)
                return
            index = found.index - 1
            if index < len(markers):
                stage = markers[index][0]
                if stage_index(stage) <= stage_index(self.stage):
                    continue  # a second line of a stage already reached (vendor SPL prints two)
                self._record(stage, found.arrived, found.text)
                later = [s for s, _ in markers if stage_index(s) > stage_index(stage)]
                waiting_for = later[0] if later else "u-boot"
                stage_started = time.monotonic()
            else:
                self.autoboot_variant = autoboot[index - len(markers)][0]

    def _check_stage_deadline(self, waiting_for: str, since: float) -> None:
        limit = self.profile.timeout(waiting_for)
        waited = time.monotonic() - since
        if waited < limit:
            return
        if self.console.bytes_received == 0 or (self.stage == "off" and self.boot_capture().strip() == ""):
            raise BenchError(
                f"nothing at all on the console {waited:.1f} s after power-on (expected stage {waiting_for}): "
                f"check the board's power ({self.power.description}) and the UART wiring (TX/RX/GND, "
                f"{self.profile.console.firmware.baud} baud)")
        raise ConsoleTimeout(
            f"stage {waiting_for} not reached: no {waiting_for} marker within its {limit:g} s timeout "
            f"(last stage seen: {self.stage})", stage=self.stage, tail=self.console.tail())

    def describe(self) -> str:
        reached = [e.stage for e in self.timeline if e.power_on == self.power_ons]
        return f"stage {self.stage} (power-ons: {self.power_ons}; this boot: {' -> '.join(reached) or 'none'})"


__all__ = ["STAGES", "BringUpSession", "TimelineEntry"]
