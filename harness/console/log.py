"""The console's files: raw bytes exactly as received, and a cleaned log with a time per line.

`console.raw` is what `hil log analyze` and any other tool should read (nothing is lost or
changed); `console.raw.idx` maps byte offsets to arrival times; `console.log` is for people and for
the report: cleaned text, each line prefixed with seconds since the console was opened.
Every chunk is flushed to the OS at once, so an interrupted or crashed run keeps all it saw.
Beside them, `events.jsonl` holds the run's steps (harness.steps), one JSON line each; the same
steps appear in console.log as `[hil] step ...` lines, so the log owns the step recorder and every
driver holding the console records through `console.log.steps`.
The files are created fresh for each console: a run's record holds that run's bytes only (the run
directory moves the previous run's files aside before the console opens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from harness.console.secrets import SecretMasker
from harness.steps import StepRecorder

EVENT_PREFIX = "[hil] "


class ConsoleLog:
    def __init__(self, directory: Path, name: str = "console", *, mask: Callable[[str], str] | None = None) -> None:
        """`mask` hides secrets in step arguments; the console passes its secret masker's `text`.
        Without it, join tokens are still masked by their key (a masker that knows no values)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.raw_path = directory / f"{name}.raw"
        self.log_path = directory / f"{name}.log"
        self.started = time.monotonic()
        self._raw = self.raw_path.open("wb")
        self._idx = (directory / f"{name}.raw.idx").open("w", encoding="utf-8")
        self._log: TextIO = self.log_path.open("w", encoding="utf-8", errors="replace", newline="\n")
        self._idx.write(f"# opened {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; columns: byte offset, seconds\n")
        self._at_line_start = True
        self._pending: list[str] = []  # step lines waiting for the board's current line to end
        self._lock = threading.Lock()  # the reader thread writes chunks, the session writes events
        events = "events.jsonl" if name == "console" else f"{name}.events.jsonl"
        self.steps = StepRecorder(directory / events, note=self.step_line, origin=self.started,
                                  mask=mask if mask is not None else SecretMasker().text)

    def seconds(self, moment: float | None = None) -> float:
        return (time.monotonic() if moment is None else moment) - self.started

    def write(self, raw: bytes, text: str, arrived: float) -> None:
        stamp = f"[{self.seconds(arrived):10.6f}] "
        with self._lock:
            self._idx.write(f"{self._raw.tell()}\t{self.seconds(arrived):.6f}\n")
            self._raw.write(raw)
            self._raw.flush()
            self._write_text(text, stamp)
            self._idx.flush()

    def _write_text(self, text: str, stamp: str) -> None:
        if not text:
            return
        lines = text.split("\n")
        out = []
        for i, line in enumerate(lines):
            if self._at_line_start and (line or i < len(lines) - 1):
                out.append(stamp)
                self._at_line_start = False
            out.append(line)
            if i < len(lines) - 1:
                out.append("\n")
                self._at_line_start = True
                out.extend(self._pending)
                self._pending.clear()
        self._log.write("".join(out))
        self._log.flush()

    def event(self, message: str) -> None:
        """A harness event (port lost, power switched) in the people's log, never in the raw bytes.

        It ends the board's current line at once: what follows (a new boot) must start a line.
        """
        with self._lock:
            prefix = "" if self._at_line_start else "\n"
            pending, self._pending = "".join(self._pending), []
            self._log.write(f"{prefix}{pending}[{self.seconds():10.6f}] {EVENT_PREFIX}{message}\n")
            self._log.flush()
            self._at_line_start = True

    def step_line(self, message: str) -> None:
        """A finished step, written after the board's current line ends (at once when none is open), so
        a prompt and the command typed at it stay on one line: `=> version; echo ...`."""
        line = f"[{self.seconds():10.6f}] {EVENT_PREFIX}{message}\n"
        with self._lock:
            if not self._at_line_start:
                self._pending.append(line)
                return
            self._log.write(line)
            self._log.flush()

    def position(self) -> int:
        """Where the people's log ends now; two positions bound a gate's console excerpt."""
        with self._lock:
            self._log.flush()
            return self._log.tell()

    def excerpt(self, start: int, end: int | None = None, limit: int = 512 * 1024) -> str:
        with self._lock:
            self._log.flush()
        with self.log_path.open("rb") as f:
            f.seek(start)
            data = f.read((end - start) if end is not None else -1)
        if len(data) > limit:
            data = b"[... %d bytes before this are in console.log ...]\n" % (len(data) - limit) + data[-limit:]
        return data.decode("utf-8", errors="replace")

    def close(self) -> None:
        self.steps.close()
        with self._lock:
            if self._pending and not self._log.closed:
                self._log.write("\n" + "".join(self._pending))
                self._pending.clear()
            for f in (self._raw, self._idx, self._log):
                if not f.closed:
                    f.close()
