"""The stage strategy: explicit transitions off → ddr → spl → u-boot → kernel → Talos stages.

It follows one boot to a target stage, timestamping each stage marker on the boot timeline, and
fails fast saying where the board stopped. A drive that fails latches the strategy `broken`: the
only way out is a power cycle (labgrid's strategies keep a failed state failed the same way), so a
later gate never inherits a board in an unknown state.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from harness.bringup.capture import BootCapture
from harness.config.profile import BoardProfile, stage_index
from harness.console.console import Console
from harness.deadline import Deadline
from harness.errors import BenchError, BoardFailure, ConsoleTimeout


@dataclass(frozen=True)
class TimelineEntry:
    power_on: int
    stage: str
    seconds: float
    line: str


class StageStrategy:
    def __init__(self, profile: BoardProfile, console: Console, capture: BootCapture, *,
                 timeout: Callable[[str], float], power_description: str,
                 media_finding: Callable[[], str | None]) -> None:
        self.profile = profile
        self.console = console
        self.capture = capture
        self.timeout = timeout
        self.power_description = power_description
        self.media_finding = media_finding
        self.stage = "off"
        self.broken = True  # nothing driven yet: the first gate powers on
        self.timeline: list[TimelineEntry] = []
        self.autoboot_variant: str | None = None
        self._power_on = 0
        self._powered_at = 0.0

    def powered_on(self, number: int, at: float) -> None:
        """A fresh boot: off, not broken, its own numbering on the timeline."""
        self.stage, self.broken = "off", False
        self._power_on, self._powered_at = number, at

    def powered_off(self) -> None:
        self.stage = "off"

    def at(self, target: str) -> bool:
        """The board is at `target` (or past it) in a boot that has not failed."""
        return self.stage != "off" and stage_index(self.stage) >= stage_index(target) and not self.broken

    def watch(self, target: str, *, interrupt: bool) -> None:
        """Follow the boot to `target`, timestamping stage markers; fail fast and say where it stopped.

        With `interrupt`, the profile's interrupt key is sent every few tens of milliseconds
        until the U-Boot prompt appears. Without it, a U-Boot prompt means U-Boot gave up booting.
        """
        self.broken = True  # until the target is reached
        uboot = self.profile.uboot
        markers = [(s, re.compile(p, re.MULTILINE)) for s, p in sorted(
            self.profile.stage_markers.items(), key=lambda item: stage_index(item[0]))
            if stage_index(self.stage) < stage_index(s) <= stage_index(target)]
        autoboot = [(a.name, re.compile(a.pattern, re.MULTILINE)) for a in uboot.autoboot]
        prompt = re.compile(re.escape(uboot.prompt))
        interval = uboot.interrupt_every_ms / 1000 if interrupt else 0.25
        waiting_for = markers[0][0] if markers else target
        deadline = Deadline(self.timeout(waiting_for))
        while True:
            if interrupt:
                self._send_interrupt()
            found = self.console.poll([prompt] + [p for _, p in markers] + [p for _, p in autoboot], interval,
                                      stage=self.stage, bad=self._bad_patterns())
            if found is None:
                if deadline.expired:
                    self._stopped(waiting_for, deadline)
                continue
            if found.index == 0:
                if self.stage != "u-boot":
                    self._record("u-boot", found.arrived, found.text, found.end)
                if interrupt:
                    self.broken = False
                    return
                raise BoardFailure(
                    f"U-Boot found nothing to boot and returned to its prompt (waiting for stage {waiting_for})",
                    stage="u-boot", tail=self.console.tail())
            index = found.index - 1
            if index >= len(markers):
                self.autoboot_variant = autoboot[index - len(markers)][0]
                continue
            stage = markers[index][0]
            if stage_index(stage) <= stage_index(self.stage):
                continue  # a second line of a stage already reached (vendor SPL prints two)
            self._record(stage, found.arrived, found.text, found.end)
            if stage == target and not interrupt:
                self.broken = False
                return
            later = [s for s, _ in markers if stage_index(s) > stage_index(stage)]
            waiting_for = later[0] if later else target
            deadline = Deadline(self.timeout(waiting_for))

    @contextlib.contextmanager
    def typing_interrupts(self) -> Iterator[None]:
        """Type the interrupt key from a thread while the body runs: a switch that reads its state back
        (an HTTP plug) can take longer to return than U-Boot's countdown lasts, so the keys must
        already be going out while it switches."""
        stop = threading.Event()

        def type_keys() -> None:
            while not stop.wait(self.profile.uboot.interrupt_every_ms / 1000):
                with contextlib.suppress(BenchError):  # the port may be away until the board powers it
                    self.console.send(self.profile.uboot.interrupt, char_delay_s=0)

        typist = threading.Thread(target=type_keys, name="interrupt-typist", daemon=True)
        typist.start()
        try:
            yield
        finally:
            stop.set()
            typist.join()

    def _bad_patterns(self) -> list[tuple[str, str]]:
        reached = stage_index(self.stage)
        return [(b.name, b.pattern) for b in self.profile.bad_patterns if stage_index(b.from_stage) <= reached]

    def _record(self, stage: str, arrived: float, line: str, end: int) -> None:
        self.stage = stage
        self.capture.stage_began(stage, end)
        self.timeline.append(TimelineEntry(self._power_on, stage, arrived - self._powered_at, line.strip()))
        self.console.log.event(f"stage {stage} at {arrived - self._powered_at:.3f} s after power-on")

    def _send_interrupt(self) -> None:
        """Type the interrupt key; skipped while the port is away (a board-powered USB UART re-enumerating)."""
        try:
            self.console.send(self.profile.uboot.interrupt, char_delay_s=0)
        except BenchError:
            if self.console.port_present:
                time.sleep(0.1)  # a write can fail just before the reader notices that the port went away
                if self.console.port_present:
                    raise

    def _stopped(self, waiting_for: str, deadline: Deadline) -> None:
        """The stage did not come in time: say whose fault that is and where the board stopped."""
        limit, waited = self.timeout(waiting_for), deadline.elapsed()
        if not self.console.port_present:
            raise BenchError(f"the console port ({self.console.where}) went away and did not come back within "
                             f"{limit:g} s (expected stage {waiting_for})")
        if self.console.bytes_received == 0 or (self.stage == "off" and self.capture.text().strip() == ""):
            if finding := self.media_finding():
                raise BoardFailure(f"{finding} (nothing on the console {waited:.1f} s after power-on)",
                                   stage=self.stage)
            raise BenchError(
                f"nothing at all on the console {waited:.1f} s after power-on (expected stage {waiting_for}): "
                f"check the board's power ({self.power_description}) and the UART wiring (TX/RX/GND, "
                f"{self.profile.console.firmware.baud} baud); a board with no valid loader on any medium "
                "also stays silent, in MaskROM")
        if finding := self.capture.silence_finding():
            raise ConsoleTimeout(f"{finding} (stage {waiting_for} not reached within {limit:g} s)",
                                 stage=self.stage, tail=self.console.tail())
        # Waiting for the stage already reached means its marker came but the U-Boot prompt did not.
        missing = (f"stage {waiting_for} not reached: no {waiting_for} marker" if waiting_for != self.stage
                   else f"the U-Boot prompt {self.profile.uboot.prompt!r} not reached: no prompt")
        raise ConsoleTimeout(
            f"{missing} within its {limit:g} s timeout "
            f"(last stage seen: {self.stage}; the console went quiet {self.capture.quiet_for():.1f} s ago)",
            stage=self.stage, tail=self.console.tail())
