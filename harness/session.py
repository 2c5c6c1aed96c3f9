"""The bring-up session: drives the board to the stage a gate needs, with the fewest power cycles.

It composes the power switch, the stage strategy (harness/bringup/stages.py: transitions, the
timeline, the broken latch) and the boot capture (harness/bringup/capture.py: this boot's text,
its first failure, waiting for evidence). It owns the only power-on in the run: gates ask for a
stage, and when the board is already there (or the evidence of the current boot already holds
what they need) nothing is switched. Every action that takes time is a step in console.log and
events.jsonl. A driver never knows whether the far side is real; only the rig does.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator

from harness.bringup.capture import BootCapture
from harness.bringup.stages import StageStrategy, TimelineEntry
from harness.config.bench import Bench
from harness.config.profile import BoardProfile, stage_index
from harness.console.console import Console
from harness.errors import BadPatternSeen, BenchError, BoardFailure, ConfigError, ConsoleTimeout
from harness.power.base import PowerSwitch
from harness.power.control import PowerControl
from harness.shell import LinuxShell
from harness.uboot import UBoot

__all__ = ["BringUpSession", "TimelineEntry"]
MASKROM_HOLD_S = 1.0  # the key is held this long after power is applied (the boot ROM samples it early)


class BringUpSession:
    def __init__(self, profile: BoardProfile, bench: Bench, console: Console, power: PowerSwitch, *,
                 off_time_s: float = 2.0, media_finding: Callable[[], str | None] = lambda: None,
                 maskrom: PowerSwitch | None = None) -> None:
        self.profile = profile
        self.bench = bench
        self.console = console
        self.power = power
        self.off_time_s = off_time_s
        self._control = PowerControl(power, off_time_s=off_time_s)
        self.maskrom = PowerControl(maskrom) if maskrom is not None else None  # the MaskROM key, if wired
        self.power_ons = 0
        self.capture = BootCapture(console, profile)
        self.stages = StageStrategy(profile, console, self.capture, timeout=self.timeout,
                                    power_description=power.description, media_finding=media_finding)
        self._steps = console.log.steps
        self._uboot: UBoot | None = None
        self._shell: LinuxShell | None = None

    # -- what the report and the plugin read ---------------------------------------------------
    @property
    def stage(self) -> str:
        return self.stages.stage

    @property
    def timeline(self) -> list[TimelineEntry]:
        return self.stages.timeline

    @property
    def autoboot_variant(self) -> str | None:
        return self.stages.autoboot_variant

    @property
    def boot_log_position(self) -> int:
        return self.capture.log_position

    @property
    def current_gate(self) -> str | None:
        return self.capture.current_gate

    @current_gate.setter
    def current_gate(self, gate: str | None) -> None:
        self.capture.current_gate = gate

    # -- power --------------------------------------------------------------------------------
    def power_off(self, why: str = "") -> None:
        with self._steps.step("power off", why=why or None):
            self._control.off()
            self.console.log.event("power off" + (f" ({why})" if why else ""))
        self.stages.powered_off()

    def power_on(self) -> None:
        """Switch on with a clean slate: old output must not satisfy the new boot's waits."""
        if self.stage != "off" or self.power.get() is not False:
            self.power_off()
            time.sleep(self.off_time_s)
        self.capture.start()
        self.power_ons += 1
        self.console.log.event(f"power on (#{self.power_ons})")
        with self._steps.step("power on", number=self.power_ons):
            self.stages.powered_on(self.power_ons, time.monotonic())
            self._control.on()

    def power_on_into_maskrom(self, hold_s: float = MASKROM_HOLD_S) -> None:
        """Hold the MaskROM key while power is applied, then let go: the boot ROM skips every medium and
        waits on USB (the flashing issue's recovery path). The key is released whatever happens."""
        if self.maskrom is None:
            raise ConfigError(f"bench '{self.bench.name}' has no maskrom: section: wire a relay or GPIO across the "
                              "board's MASK key and name it there, e.g. maskrom: {kind: lcus, port: ..., channel: 2}")
        with self._steps.step("power on into MaskROM", hold_s=hold_s):
            self.maskrom.on()
            try:
                self.console.log.event("MaskROM key pressed")
                self.power_on()
                time.sleep(hold_s)
            finally:
                self.maskrom.off()
                self.console.log.event("MaskROM key released")

    def boot_capture(self) -> str:
        """Cleaned console text since the last power-on: the evidence of the current boot."""
        return self.capture.text()

    # -- stages --------------------------------------------------------------------------------
    def uboot_prompt(self) -> UBoot:
        """The board held at the U-Boot prompt; powers on only if it is not there already."""
        if self.stage == "u-boot" and self._uboot is not None and not self.stages.broken:
            try:
                self._uboot.sync(timeout=2.0)
                return self._uboot
            except (ConsoleTimeout, BadPatternSeen) as exc:
                self.console.log.event(f"the U-Boot prompt stopped answering ({exc.args[0]}); power-cycling")
        self.capture.refuse_if_stopped("u-boot")
        with self.stages.typing_interrupts():
            self.power_on()
        with self._drive("u-boot"):
            self.stages.watch("u-boot", interrupt=True)
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
        if self.stages.at(target):
            return
        self.capture.refuse_if_stopped(target)
        if self.profile.uboot.before_boot:
            uboot = self.uboot_prompt()
            for command in self.profile.uboot.before_boot:
                result = uboot.exec(command)
                if not result.ok:
                    raise BoardFailure(f"U-Boot command {command!r} (uboot.before_boot) exited {result.status}: "
                                       f"{result.output}", stage="u-boot", tail=self.console.tail())
        if self.stage == "u-boot" and self._uboot is not None and not self.stages.broken:
            self._uboot = None
            self.console.sendline("boot")
        else:
            self.power_on()
        self._shell = None
        with self._drive(target):
            self.stages.watch(target, interrupt=False)

    @contextlib.contextmanager
    def _drive(self, target: str) -> Iterator[None]:
        """A drive to `target` is a step; one that fails stops this boot for the gates that come after."""
        try:
            with self._steps.step("expect stage", stage=target):
                yield
        except (BenchError, BoardFailure) as exc:
            self.capture.record_stop(exc, stage=self.stage, target=target, summary=str(exc).split("\n")[0],
                                     bad_pattern=isinstance(exc, BadPatternSeen))
            raise

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

    def evidence(self, pattern: str | re.Pattern[str], *, stage: str, what: str,
                 timeout: float | None = None, needs_stage: str | None = None) -> re.Match[str]:
        """Wait until this boot's capture holds `pattern` (see BootCapture.wait_for); `needs_stage`:
        the evidence can only appear once the boot reaches that later stage (Talos configures the
        Ethernet link), so a wait that ends before it is `Blocked`, not failed."""
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        limit = self.timeout(stage) if timeout is None else timeout
        if needs_stage is not None:
            limit += sum(self.timeout(s) for s in self.profile.timeouts
                         if stage_index(stage) < stage_index(s) <= stage_index(needs_stage))
        with self._steps.step("expect evidence", what=what):
            return self.capture.wait_for(compiled, what=what, limit=limit, stage=self.stage, describe=self.describe,
                                         needs_stage=needs_stage)

    def timeout(self, stage: str) -> float:
        """The profile's stage timeout, scaled for a virtual board, never under two seconds."""
        return max(2.0, self.profile.timeout(stage) * self.bench.timeout_scale)

    def __repr__(self) -> str:  # pytest prints gate arguments in failures: keep it to what matters
        return f"<BringUpSession {self.profile.name} on {self.bench.name}: {self.describe()}>"

    def describe(self) -> str:
        reached = [e.stage for e in self.timeline if e.power_on == self.power_ons]
        return f"stage {self.stage} (power-ons: {self.power_ons}; this boot: {' -> '.join(reached) or 'none'})"
