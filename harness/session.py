"""The bring-up session: drives the board to the stage a gate needs, with the fewest power cycles.

It owns the only power-on in the run: gates ask for a stage, and when the board is already
there (or the evidence of the current boot already holds what they need) nothing is switched.
Every stage marker's arrival is written to the boot timeline, and the raw-log position of the
last power-on bounds the capture that passive gates (DDR, kernel facts) read.

One verdict per cause: when a boot stops (silence, a bad pattern, a stage never reached), that
first failure is kept, and every later gate that needs the same boot fails at once quoting it,
with its blame (a silent console stays a bench error), instead of powering on again or waiting
its own full timeout. Only a gate that needs a new boot (the U-Boot prompt after a kernel
failure) powers the board on again. A gate whose evidence can only appear after a stage the
boot never reached is `Blocked`, quoting the failure.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness.config.bench import Bench
from harness.config.profile import BoardProfile, stage_index
from harness.console.cleaner import Cleaner
from harness.console.console import Console
from harness.errors import BadPatternSeen, BenchError, Blocked, BoardFailure, ConsoleTimeout, HarnessError
from harness.power.base import PowerSwitch
from harness.shell import LinuxShell
from harness.uboot import UBoot


@dataclass(frozen=True)
class TimelineEntry:
    power_on: int
    stage: str
    seconds: float
    line: str


QUIET_S = 1.0  # a wait that times out after this long without a byte ended in silence: the boot stopped


@dataclass(frozen=True)
class BootStop:
    """The first failure of the current boot, quoted by every later wait that needs the same boot."""

    error: HarnessError
    summary: str
    gate: str | None
    stage: str  # the stage the boot had reached
    target: str  # what the failing wait was driving to or waiting in
    capture_len: int  # how much of the capture there was: more output means the board is not stopped
    bad_pattern: bool

    @property
    def quote(self) -> str:
        """How later gates cite it: ` in gate BOOT-04: <what happened>`."""
        return (f" in gate {self.gate}: " if self.gate else ": ") + self.summary

    def repeat(self, what: str) -> HarnessError:
        """The same cause for a later gate, with the same blame."""
        message = f"{what}: not waited for, this boot already stopped{self.quote}"
        if isinstance(self.error, BenchError):
            return BenchError(message)
        tail = self.error.tail if isinstance(self.error, BoardFailure) else ()
        return BoardFailure(message, stage=self.stage, tail=tail)


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
    _capture: str = ""  # boot_capture() so far, and where in the raw log it stops
    _capture_raw_end: int = 0
    _capture_cleaner: Cleaner = field(default_factory=Cleaner)
    _powered_at: float = 0.0
    _uboot: UBoot | None = None
    _boot_text_start: int = 0
    _stage_offsets: dict[str, int] = field(default_factory=dict)  # where each stage began in the capture
    _shell: LinuxShell | None = None
    _healthy: bool = False  # the last drive reached its target; a failed one forces a power cycle
    _stop: BootStop | None = None
    current_gate: str | None = None  # set by the plugin: which gate a recorded failure was seen in
    media_finding: Callable[[], str | None] = lambda: None  # why the board's media cannot boot, if known
    virtual_board: object = None  # the VirtualBoard behind a sim bench, for its own tests; None on hardware

    # -- power --------------------------------------------------------------------------------
    def power_off(self, why: str = "") -> None:
        self.power.set(False)
        self.console.log.event("power off" + (f" ({why})" if why else ""))
        self.stage = "off"

    def power_on(self) -> None:
        """Switch on with a clean slate: old output must not satisfy the new boot's waits."""
        if self.stage != "off" or self.power.get() is not False:
            self.power_off()
            time.sleep(self.off_time_s)
        self.console.discard_pending()
        self.console.mark()
        self._capture_raw_end = 0
        self._capture, self._capture_cleaner = "", Cleaner()
        self._stop = None
        self.boot_log_position = self.console.log.position()
        self._boot_text_start = self.console.buffer.received
        self._stage_offsets = {}
        self.power_ons += 1
        self.console.log.event(f"power on (#{self.power_ons})")
        self._powered_at = time.monotonic()
        self.power.set(True)

    def boot_capture(self) -> str:
        """Cleaned console text since the last power-on: the evidence of the current boot.

        Built from the bytes the console received since power-on (the expect buffer drops consumed
        text), incrementally: gates poll this while they wait, so only new bytes are cleaned.
        """
        new = self.console.received_since_mark(self._capture_raw_end)
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
        self._refuse_if_stopped("u-boot")
        self.power_on()
        with self._stops_boot("u-boot"):
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
        self._refuse_if_stopped(target)
        if self.profile.uboot.before_boot:
            uboot = self.uboot_prompt()
            for command in self.profile.uboot.before_boot:
                result = uboot.exec(command)
                if not result.ok:
                    raise BoardFailure(f"U-Boot command {command!r} (uboot.before_boot) exited {result.status}: "
                                       f"{result.output}", stage="u-boot", tail=self.console.tail())
        if self.stage == "u-boot" and self._uboot is not None and self._healthy:
            self._uboot = None
            self.console.sendline("boot")
        else:
            self.power_on()
        self._shell = None
        with self._stops_boot(target):
            self._watch(target, interrupt=False)

    # -- one verdict per cause -------------------------------------------------------------------
    def _refuse_if_stopped(self, target: str) -> None:
        """Fail at once, quoting the first failure, when driving to `target` would repeat a stopped boot.

        A new boot is worth it only when the stopped one got past what `target` needs (the U-Boot
        prompt after a kernel failure); otherwise it would walk the same path to the same stop.
        """
        stop = self._stop
        if stop is None:
            return
        if target == "u-boot":
            same_path = stop.target == "u-boot" or stage_index(stop.stage) < stage_index("u-boot")
        else:
            same_path = stage_index(stop.stage) < stage_index(target)
        if same_path:
            raise stop.repeat(f"stage {target}")

    @contextlib.contextmanager
    def _stops_boot(self, target: str) -> Iterator[None]:
        """A failed drive stops this boot: record it for the gates that come after."""
        try:
            yield
        except (BenchError, BoardFailure) as exc:
            self._record_stop(exc, target, summary=str(exc).split("\n")[0],
                              bad_pattern=isinstance(exc, BadPatternSeen))
            raise

    def _record_stop(self, error: HarnessError, target: str, *, summary: str, bad_pattern: bool) -> None:
        if self._stop is None:
            self._stop = BootStop(error, summary, self.current_gate, self.stage, target,
                                  len(self.boot_capture()), bad_pattern)

    def _quiet_summary(self) -> str:
        tail = self.console.tail(1)
        last = f" after {tail[-1].strip()!r}" if tail else " (nothing printed)"
        finding = self._silence_finding()
        return f"the console went quiet {self._quiet_for():.1f} s{last}" + (f": {finding}" if finding else "")

    def _silence_finding(self) -> str | None:
        """The profile's named reason for the console going quiet right after its last line, if any."""
        tail = self.console.tail(1)
        for known in self.profile.silent_after:
            if tail and re.search(known.after, tail[-1]):
                return known.finding
        return None

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
                 timeout: float | None = None, needs_stage: str | None = None) -> re.Match[str]:
        """Wait until this boot's capture holds `pattern`, without consuming anything.

        Passive gates read the same boot independently (one gate's wait must not swallow another
        gate's line), so they search the capture since power-on rather than the expect buffer.
        A bad pattern in the capture ends the wait at once. `needs_stage`: the evidence can only
        appear once the boot reaches that later stage (Talos configures the Ethernet link); a wait
        that ends before it is `Blocked` by the failure, not failed.
        """
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        limit = self.timeout(stage) if timeout is None else timeout
        if needs_stage is not None:
            limit += sum(self.timeout(s) for s in self.profile.timeouts
                         if stage_index(stage) < stage_index(s) <= stage_index(needs_stage))
        started = time.monotonic()
        bad = [(b.name, re.compile(b.pattern, re.MULTILINE), self._stage_offsets.get(b.from_stage, 0))
               for b in self.profile.bad_patterns if b.from_stage == "off" or b.from_stage in self._stage_offsets]
        while True:
            capture = self.boot_capture()
            if m := compiled.search(capture):
                return m
            stop = self._stop
            if stop is not None and (stop.bad_pattern or len(capture) == stop.capture_len):
                raise self._blocked(stop.repeat(what), what, needs_stage, capture)
            for name, bad_pattern, offset in bad:
                if seen := bad_pattern.search(capture, offset):
                    line = capture[capture.rfind("\n", 0, seen.start()) + 1: capture.find("\n", seen.end())]
                    error = BadPatternSeen(f"{name} at stage {self.stage} while waiting for {what}: {line.strip()!r}",
                                           name=name, line=line.strip(), stage=self.stage, tail=self.console.tail())
                    self._record_stop(error, self.stage, summary=f"{name}: {line.strip()!r}", bad_pattern=True)
                    raise self._blocked(error, what, needs_stage, capture)
            waited = time.monotonic() - started
            if waited >= limit:
                quiet = self._quiet_for() >= min(QUIET_S, limit / 2)
                why = f"; {self._quiet_summary()}" if quiet else ""
                error = ConsoleTimeout(
                    f"{what} not seen: expected /{compiled.pattern}/ in this boot's console within {limit:g} s "
                    f"(waited {waited:.1f} s; {self.describe()}){why}", stage=self.stage, tail=self.console.tail())
                if quiet:
                    self._record_stop(error, self.stage, summary=self._quiet_summary(), bad_pattern=False)
                raise self._blocked(error, what, needs_stage, capture)
            time.sleep(0.1)

    def _blocked(self, error: HarnessError, what: str, needs_stage: str | None, capture: str) -> HarnessError:
        """`error`, or Blocked when the evidence needed a later stage this boot never reached."""
        marker = self.profile.stage_markers.get(needs_stage) if needs_stage else None  # type: ignore[call-overload]
        if marker is None or re.search(marker, capture, re.MULTILINE):
            return error
        cause = self._stop.quote if self._stop is not None else ": " + str(error).split("\n")[0]
        return Blocked(f"{what} can only appear once the board reaches stage {needs_stage}, and this boot stopped "
                       f"before it{cause}")

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
            if finding := self.media_finding():
                raise BoardFailure(f"{finding} (nothing on the console {waited:.1f} s after power-on)",
                                   stage=self.stage)
            raise BenchError(
                f"nothing at all on the console {waited:.1f} s after power-on (expected stage {waiting_for}): "
                f"check the board's power ({self.power.description}) and the UART wiring (TX/RX/GND, "
                f"{self.profile.console.firmware.baud} baud); a board with no valid loader on any medium "
                "also stays silent, in MaskROM")
        if finding := self._silence_finding():
            raise ConsoleTimeout(f"{finding} (stage {waiting_for} not reached within {limit:g} s)",
                                 stage=self.stage, tail=self.console.tail())
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

