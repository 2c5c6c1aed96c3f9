"""One boot's evidence: the console text since power-on, where each stage began in it, and the
first failure that stopped the boot.

Passive gates read the same boot independently (one gate's wait must not swallow another gate's
line), so they search the capture since power-on rather than the expect buffer. The capture is
built from the bytes this console received since the power-on mark, held in memory, never read
back from a file. One bad-pattern check serves every wait on it.

One verdict per cause: when a boot stops (silence, a bad pattern, a stage never reached), that
first failure is kept as a `BootStop`, and every later wait that needs the same boot fails at once
quoting it, with its blame (a silent console stays a bench error). A wait whose evidence can only
appear after a stage the boot never reached is `Blocked`, quoting the failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.config.profile import BoardProfile, stage_index
from harness.console.cleaner import Cleaner
from harness.console.console import Console
from harness.deadline import Deadline
from harness.errors import BadPatternSeen, BenchError, Blocked, BoardFailure, ConsoleTimeout, HarnessError

QUIET_S = 1.0  # a wait that times out after this long without a byte ended in silence: the boot stopped
LINE_GRACE_S = 1.0  # how long a bad pattern's line may take to end before it is quoted as it is


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


class BootCapture:
    def __init__(self, console: Console, profile: BoardProfile) -> None:
        self.console = console
        self.profile = profile
        self.current_gate: str | None = None  # set by the plugin: which gate a recorded failure was seen in
        self.log_position = 0  # where this boot starts in the people's log (for the report)
        self.stop: BootStop | None = None
        self.stage_offsets: dict[str, int] = {}  # where each stage began in the capture
        self._text = ""
        self._raw_end = 0
        self._cleaner = Cleaner()
        self._text_start = 0

    def start(self) -> None:
        """At power-on: old output must not satisfy the new boot's waits, nor its stop the new boot's."""
        self.console.discard_pending()
        self.console.mark()
        self._raw_end, self._text, self._cleaner = 0, "", Cleaner()
        self.stop = None
        self.stage_offsets = {}
        self.log_position = self.console.log.position()
        self._text_start = self.console.buffer.received

    def text(self) -> str:
        """Cleaned console text since the last power-on, cleaned incrementally: gates poll this while
        they wait, so only the bytes that arrived since the last call are cleaned."""
        new = self.console.received_since_mark(self._raw_end)
        if new:
            self._raw_end += len(new)
            self._text += self._cleaner.feed(new)
        return self._text

    def stage_began(self, stage: str, buffer_end: int) -> None:
        """The expect buffer matched `stage`'s marker ending at `buffer_end`: remember where, in the capture."""
        self.stage_offsets[stage] = buffer_end - self._text_start

    # -- the first failure -------------------------------------------------------------------------
    def record_stop(self, error: HarnessError, *, stage: str, target: str, summary: str, bad_pattern: bool) -> None:
        if self.stop is None:
            self.stop = BootStop(error, summary, self.current_gate, stage, target, len(self.text()), bad_pattern)

    def quiet_for(self) -> float:
        return time.monotonic() - self.console.last_arrival if self.console.last_arrival else 0.0

    def silence_finding(self) -> str | None:
        """The profile's named reason for the console going quiet right after its last line, if any."""
        tail = self.console.tail(1)
        for known in self.profile.silent_after:
            if tail and re.search(known.after, tail[-1]):
                return known.finding
        return None

    def quiet_summary(self) -> str:
        tail = self.console.tail(1)
        last = f" after {tail[-1].strip()!r}" if tail else " (nothing printed)"
        finding = self.silence_finding()
        return f"the console went quiet {self.quiet_for():.1f} s{last}" + (f": {finding}" if finding else "")

    # -- waiting for evidence ----------------------------------------------------------------------
    def wait_for(self, pattern: re.Pattern[str], *, what: str, limit: float, stage: str,
                 describe: Callable[[], str], needs_stage: str | None = None) -> re.Match[str]:
        """Wait until the capture holds `pattern`, without consuming anything; a bad pattern ends the
        wait at once. `needs_stage`: the evidence can only appear once the boot reaches that later
        stage; a wait that ends before it raises `Blocked`, quoting the failure."""
        deadline = Deadline(limit)
        unfinished_since = 0.0  # when a bad pattern was first seen on a line that had not ended yet
        bad = [(b.name, re.compile(b.pattern, re.MULTILINE), self.stage_offsets.get(b.from_stage, 0))
               for b in self.profile.bad_patterns if b.from_stage == "off" or b.from_stage in self.stage_offsets]
        while True:
            capture = self.text()
            if m := pattern.search(capture):
                return m
            stop = self.stop
            if stop is not None and (stop.bad_pattern or len(capture) == stop.capture_len):
                raise self._blocked(stop.repeat(what), what, needs_stage, capture)
            for name, bad_pattern, offset in bad:
                if seen := bad_pattern.search(capture, offset):
                    end = capture.find("\n", seen.end())
                    if end < 0:
                        unfinished_since = unfinished_since or time.monotonic()
                        if time.monotonic() - unfinished_since < LINE_GRACE_S:
                            break  # its line is still arriving: quote it whole
                    line = capture[capture.rfind("\n", 0, seen.start()) + 1: end if end >= 0 else None].strip()
                    error = BadPatternSeen(f"{name} at stage {stage} while waiting for {what}: {line!r}",
                                           name=name, line=line, stage=stage, tail=self.console.tail())
                    self.record_stop(error, stage=stage, target=stage, summary=f"{name}: {line!r}", bad_pattern=True)
                    raise self._blocked(error, what, needs_stage, capture)
            if deadline.expired:
                quiet = self.quiet_for() >= min(QUIET_S, limit / 2)
                why = f"; {self.quiet_summary()}" if quiet else ""
                error = ConsoleTimeout(
                    f"{what} not seen: expected /{pattern.pattern}/ in this boot's console within {limit:g} s "
                    f"(waited {deadline.elapsed():.1f} s; {describe()}){why}", stage=stage, tail=self.console.tail())
                if quiet:
                    self.record_stop(error, stage=stage, target=stage, summary=self.quiet_summary(), bad_pattern=False)
                raise self._blocked(error, what, needs_stage, capture)
            deadline.sleep(0.1)

    def _blocked(self, error: HarnessError, what: str, needs_stage: str | None, capture: str) -> HarnessError:
        """`error`, or Blocked when the evidence needed a later stage this boot never reached."""
        marker = self.profile.stage_markers.get(needs_stage) if needs_stage else None  # type: ignore[call-overload]
        if marker is None or re.search(marker, capture, re.MULTILINE):
            return error
        cause = self.stop.quote if self.stop is not None else ": " + str(error).split("\n")[0]
        return Blocked(f"{what} can only appear once the board reaches stage {needs_stage}, and this boot stopped "
                       f"before it{cause}")

    def refuse_if_stopped(self, target: str) -> None:
        """Fail at once, quoting the first failure, when driving to `target` would repeat a stopped boot.

        A new boot is worth it only when the stopped one got past what `target` needs (the U-Boot
        prompt after a kernel failure); otherwise it would walk the same path to the same stop.
        """
        stop = self.stop
        if stop is None:
            return
        if target == "u-boot":
            same_path = stop.target == "u-boot" or stage_index(stop.stage) < stage_index("u-boot")
        else:
            same_path = stage_index(stop.stage) < stage_index(target)
        if same_path:
            raise stop.repeat(f"stage {target}")
