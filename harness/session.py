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
from harness.config.profile import BoardProfile, stage_index
from harness.console.cleaner import Cleaner
from harness.console.console import Console
from harness.errors import BadPatternSeen, BenchError, BoardFailure, ConsoleTimeout
from harness.power.base import PowerSwitch
from harness.shell import LinuxShell
from harness.uboot import UBoot


@dataclass(frozen=True)
class TimelineEntry:
    power_on: int
    stage: str
    seconds: float
    line: str


@dataclass(repr=False)
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
    boot_log_position: int = 0  # where this boot starts in the people's log (for the report)
    _boot_position: int = 0
    _capture: str = ""  # boot_capture() so far, and where in the raw log it stops
    _capture_raw_end: int = 0
    _capture_cleaner: Cleaner = field(default_factory=Cleaner)
    _powered_at: float = 0.0
    _uboot: UBoot | None = None
    _boot_text_start: int = 0
    _stage_offsets: dict[str, int] = field(default_factory=dict)  # where each stage began in the capture
    _shell: LinuxShell | None = None
    _healthy: bool = False  # the last drive reached its target; a failed one forces a power cycle
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
        self._boot_position = self._capture_raw_end = self.console.raw_position()
        self._capture, self._capture_cleaner = "", Cleaner()
        self.boot_log_position = self.console.log.position()
        self._boot_text_start = self.console.buffer.received
        self._stage_offsets = {}
        self.power_ons += 1
        self.console.log.event(f"power on (#{self.power_ons})")
        self._powered_at = time.monotonic()
        self.power.set(True)

    def boot_capture(self) -> str:
        """Cleaned console text since the last power-on: the evidence of the current boot.

        Read back from the raw log (the expect buffer drops consumed text), incrementally: gates
        poll this while they wait, so only the bytes that arrived since the last call are cleaned.
        """
        new = self.console.log.raw_bytes(self._capture_raw_end)
        if new:
            self._capture_raw_end += len(new)
            self._capture += self._capture_cleaner.feed(new)
        return self._capture

    # -- stages --------------------------------------------------------------------------------
    def _bad_patterns(self) -> list[tuple[str, str]]:
        reached = stage_index(self.stage)
        return [(b.name, b.pattern) for b in self.profile.bad_patterns if stage_index(b.from_stage) <= reached]

    def _record(self, stage: str, arrived: float, line: str, end: int) -> None:
        self.stage = stage
        self._stage_offsets[stage] = end - self._boot_text_start
        self.timeline.append(TimelineEntry(self.power_ons, stage, arrived - self._powered_at, line.strip()))
        self.console.log.event(f"stage {stage} at {arrived - self._powered_at:.3f} s after power-on")

    def uboot_prompt(self) -> UBoot:
        """The board held at the U-Boot prompt; powers on only if it is not there already."""
        if self.stage == "u-boot" and self._uboot is not None and self._healthy:
            try:
                self._uboot.sync(timeout=2.0)
                return self._uboot
            except (ConsoleTimeout, BadPatternSeen) as exc:
                self.console.log.event(f"the U-Boot prompt stopped answering ({exc.args[0]}); power-cycling")
        self.power_on()
        self._watch("u-boot", interrupt=True)
        self._uboot = UBoot(self.console, self.profile)
        self._uboot.sync()
        return self._uboot

    def reach(self, target: str) -> None:
        """Drive the board to `target` (a stage after U-Boot) with the fewest power cycles.

        Already there: nothing happens. Held at the U-Boot prompt: `boot` continues this boot
        instead of starting another. Otherwise one power-on, with no keystroke sent.
        """
        if target == "u-boot":
            self.uboot_prompt()
            return
        if target not in self.profile.stage_markers:
            raise BoardFailure(f"the {self.profile.name} profile has no marker for stage {target}", stage=self.stage)
        if self.stage != "off" and stage_index(self.stage) >= stage_index(target) and self._healthy:
            return
        if self.profile.uboot.before_boot:
            uboot = self.uboot_prompt()
            for command in self.profile.uboot.before_boot:
                result = uboot.run(command)
                if not result.ok:
                    raise BoardFailure(f"U-Boot command {command!r} (uboot.before_boot) exited {result.status}: "
                                       f"{result.output}", stage="u-boot", tail=self.console.tail())
        if self.stage == "u-boot" and self._uboot is not None and self._healthy:
            self._uboot = None
            self.console.sendline("boot")
        else:
            self.power_on()
        self._shell = None
        self._watch(target, interrupt=False)

    def shell(self) -> LinuxShell:
        """The Linux shell on the console, once the kernel has handed over to userspace."""
        spec = self.profile.shell
        if spec is None:
            raise BoardFailure(f"{self.profile.name} has no shell on its console (profile: no shell section)",
                               stage=self.stage)
        self.reach("kernel")
        if self._shell is None:
            self.evidence(self.profile.kernel.userspace, stage="kernel", what="the kernel handing over to userspace")
            shell = LinuxShell(self.console, spec.prompt, login_user=spec.login_user)
            shell.sync(timeout=self.timeout("kernel"))
            self._shell = shell
        return self._shell

    def _watch(self, target: str, *, interrupt: bool) -> None:
        """Follow the boot to `target`, timestamping stage markers; fail fast and say where it stopped.

        With `interrupt`, the profile's interrupt key is sent every few tens of milliseconds
        until the U-Boot prompt appears. Without it, a U-Boot prompt means U-Boot gave up booting.
        """
        self._healthy = False
        uboot = self.profile.uboot
        markers = [(s, re.compile(p, re.MULTILINE)) for s, p in sorted(
            self.profile.stage_markers.items(), key=lambda item: stage_index(item[0]))
            if stage_index(self.stage) < stage_index(s) <= stage_index(target)]
        autoboot = [(a.name, re.compile(a.pattern, re.MULTILINE)) for a in uboot.autoboot]
        prompt = re.compile(re.escape(uboot.prompt))
        interval = uboot.interrupt_every_ms / 1000 if interrupt else 0.25
        waiting_for = markers[0][0] if markers else target
        stage_started = time.monotonic()
        while True:
            if interrupt:
                self._send_interrupt()
            found = self.console.poll([prompt] + [p for _, p in markers] + [p for _, p in autoboot], interval,
                                      stage=self.stage, bad=self._bad_patterns())
            if found is None:
                self._check_stage_deadline(waiting_for, stage_started)
                continue
            if found.index == 0:
                if self.stage != "u-boot":
                    self._record("u-boot", found.arrived, found.text, found.end)
                if interrupt:
                    self._healthy = True
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
                self._healthy = True
                return
            later = [s for s, _ in markers if stage_index(s) > stage_index(stage)]
            waiting_for = later[0] if later else target
            stage_started = time.monotonic()

    def evidence(self, pattern: str | re.Pattern[str], *, stage: str, what: str,
                 timeout: float | None = None) -> re.Match[str]:
        """Wait until this boot's capture holds `pattern`, without consuming anything.

        Passive gates read the same boot independently (one gate's wait must not swallow another
        gate's line), so they search the capture since power-on rather than the expect buffer.
        A bad pattern in the capture ends the wait at once.
        """
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        limit = self.timeout(stage) if timeout is None else timeout
        started = time.monotonic()
        bad = [(b.name, re.compile(b.pattern, re.MULTILINE), self._stage_offsets.get(b.from_stage, 0))
               for b in self.profile.bad_patterns if b.from_stage == "off" or b.from_stage in self._stage_offsets]
        while True:
            capture = self.boot_capture()
            if m := compiled.search(capture):
                return m
            for name, bad_pattern, offset in bad:
                if seen := bad_pattern.search(capture, offset):
                    line = capture[capture.rfind("\n", 0, seen.start()) + 1: capture.find("\n", seen.end())]
                    raise BadPatternSeen(f"{name} at stage {self.stage} while waiting for {what}: {line.strip()!r}",
                                         name=name, line=line.strip(), stage=self.stage, tail=self.console.tail())
            waited = time.monotonic() - started
            if waited >= limit:
                raise ConsoleTimeout(
                    f"{what} not seen: expected /{compiled.pattern}/ in this boot's console within {limit:g} s "
                    f"(waited {waited:.1f} s; {self.describe()})", stage=self.stage, tail=self.console.tail())
            time.sleep(0.1)

    def _send_interrupt(self) -> None:
        """Type the interrupt key; skipped while the port is away (a board-powered USB UART re-enumerating)."""
        try:
            self.console.send(self.profile.uboot.interrupt, char_delay_s=0)
        except BenchError:
            if self.console.port_present:
                time.sleep(0.1)  # a write can fail just before the reader notices that the port went away
                if self.console.port_present:
                    raise

    def timeout(self, stage: str) -> float:
        """The profile's stage timeout, scaled for a virtual board, never under two seconds."""
        return max(2.0, self.profile.timeout(stage) * self.bench.timeout_scale)

    def _check_stage_deadline(self, waiting_for: str, since: float) -> None:
        limit = self.timeout(waiting_for)
        waited = time.monotonic() - since
        if waited < limit:
            return
        if not self.console.port_present:
            raise BenchError(f"the console port ({self.console.where}) went away and did not come back within "
                             f"{limit:g} s (expected stage {waiting_for})")
        if self.console.bytes_received == 0 or (self.stage == "off" and self.boot_capture().strip() == ""):
            raise BenchError(
                f"nothing at all on the console {waited:.1f} s after power-on (expected stage {waiting_for}): "
                f"check the board's power ({self.power.description}) and the UART wiring (TX/RX/GND, "
                f"{self.profile.console.firmware.baud} baud); a board with no valid loader on any medium "
                "also stays silent, in MaskROM")
        tail = self.console.tail()
        for known in self.profile.silent_after:
            if tail and re.search(known.after, tail[-1]):
                raise ConsoleTimeout(f"{known.finding} (stage {waiting_for} not reached within {limit:g} s)",
                                     stage=self.stage, tail=tail)
        # Waiting for the stage already reached means its marker came but the U-Boot prompt did not.
        missing = (f"stage {waiting_for} not reached: no {waiting_for} marker" if waiting_for != self.stage
                   else f"the U-Boot prompt {self.profile.uboot.prompt!r} not reached: no prompt")
        raise ConsoleTimeout(
            f"{missing} within its {limit:g} s timeout "
            f"(last stage seen: {self.stage}; the console went quiet {self._quiet_for():.1f} s ago)",
            stage=self.stage, tail=self.console.tail())

    def _quiet_for(self) -> float:
        return time.monotonic() - self.console.last_arrival if self.console.last_arrival else 0.0

    def __repr__(self) -> str:  # pytest prints gate arguments in failures: keep it to what matters
        return f"<BringUpSession {self.profile.name} on {self.bench.name}: {self.describe()}>"

    def describe(self) -> str:
        reached = [e.stage for e in self.timeline if e.power_on == self.power_ons]
        return f"stage {self.stage} (power-ons: {self.power_ons}; this boot: {' -> '.join(reached) or 'none'})"

