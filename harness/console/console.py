"""The console: one background reader from open to close, expect on cleaned text, paced typing.

Unlike drivers that read only inside `expect`, the reader drains the port the whole session,
so DDR and SPL lines printed in the first milliseconds after power-on are in the log and in the
expect buffer even though no test was waiting yet. A port that vanishes (a USB UART powered by
the board, re-enumerated after a power cycle) is reopened by the reader, which keeps writing
the same log.
"""

from __future__ import annotations

import contextlib
import re
import termios
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

import serial

from harness.console.buffer import BadMatch, BufferClosed, ExpectBuffer, Match
from harness.console.cleaner import Cleaner
from harness.console.log import ConsoleLog
from harness.console.port import open_port
from harness.console.secrets import SecretMasker
from harness.errors import BadPatternSeen, BenchError, ConsoleTimeout

PatternLike = str | re.Pattern[str]
UrlSource = str | Callable[[], str | None]


# How a port that vanished (or was closed by the reader meanwhile) fails: termios.error is not an
# OSError, and pyserial's posix code racing a close() trips over a file descriptor of None.
PORT_ERRORS = (serial.SerialException, OSError, termios.error, TypeError, AttributeError)


def compile_pattern(pattern: PatternLike) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)


def compile_patterns(patterns: PatternLike | Sequence[PatternLike]) -> list[re.Pattern[str]]:
    """One pattern or several, as a list (expect takes either)."""
    return [compile_pattern(p) for p in ([patterns] if isinstance(patterns, str | re.Pattern) else patterns)]


class Console:
    """A board's serial console. Use as a context manager, or call open() and close()."""

    def __init__(self, url: UrlSource, baud: int, log_dir: Path, *, char_delay_s: float = 0.0,
                 name: str = "console", where: str = "the bench's serial.url", secrets: Iterable[str] = ()) -> None:
        self._url_source = url
        self.baud = baud
        self.char_delay_s = char_delay_s
        self.where = where
        self.masker = SecretMasker(secrets)
        self.log = ConsoleLog(log_dir, name, mask=self.masker.text)
        self.buffer = ExpectBuffer()
        self.bad_patterns: list[tuple[str, re.Pattern[str]]] = []
        self._port: serial.SerialBase | None = None
        self._port_lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._lost_since: float | None = None
        self._lost_reason = ""
        self.bytes_received = 0
        self._since_mark = bytearray()  # what this console received since mark(): a boot's own bytes
        self._since_mark_lock = threading.Lock()
        self.last_arrival = 0.0
        self.reopen_count = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        source = self._url_source
        found = source() if callable(source) else source
        if not found:
            raise BenchError(f"the console's serial device is not present ({self.where})")
        return found

    def open(self) -> Console:
        self._port = open_port(self.url, self.baud, where=self.where)
        self.log.event(f"console opened: {self._port.name} at {self.baud} baud")
        self._reader = threading.Thread(target=self._read_forever, name="console-reader", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        if self._stop.is_set():
            return  # already closed (a second close must not write to the closed log)
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=5)
        with self._port_lock:
            if self._port is not None:
                self._port.close()
                self._port = None
        self.buffer.close()
        self.log.event("console closed")
        self.log.close()

    def __enter__(self) -> Console:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reader thread -----------------------------------------------------------------------
    def _read_forever(self) -> None:
        cleaner = Cleaner()
        while not self._stop.is_set():
            port = self._port
            if port is None:
                self._reopen()
                continue
            try:
                waiting = port.in_waiting
                data = port.read(waiting if waiting > 0 else 1)
                if waiting <= 0 and data and (more := port.in_waiting) > 0:
                    data += port.read(more)  # woken by a burst's first byte: take the rest in the same chunk
            except PORT_ERRORS as exc:
                if self._stop.is_set():
                    break
                self._lose_port(str(exc))
                continue
            data = self.masker.feed(data)
            if data:
                arrived = time.monotonic()
                self.last_arrival = arrived
                self.bytes_received += len(data)
                with self._since_mark_lock:
                    self._since_mark += data
                text = cleaner.feed(data)
                self.log.write(data, text, arrived)
                self.buffer.append(text, arrived)
        rest = self.masker.flush()
        tail = cleaner.feed(rest) + cleaner.flush()
        if rest or tail:
            self.log.write(rest, tail, time.monotonic())
            self.buffer.append(tail)

    def _lose_port(self, reason: str) -> None:
        with self._port_lock:
            if self._port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
            self._port = None
        self._lost_since = time.monotonic()
        self._lost_reason = reason
        self.log.event(f"console port lost ({reason}); reopening when it comes back")

    def _reopen(self) -> None:
        try:
            port = open_port(self.url, self.baud, where=self.where)
        except BenchError:
            self._stop.wait(0.1)
            return
        with self._port_lock:
            self._port = port
        self.reopen_count += 1
        self.log.event(f"console port back: {port.name}, after "
                       f"{time.monotonic() - (self._lost_since or time.monotonic()):.1f} s")
        self._lost_since = None

    @property
    def port_present(self) -> bool:
        return self._port is not None

    # -- matching ----------------------------------------------------------------------------
    def poll(self, patterns: PatternLike | Sequence[PatternLike], timeout: float, *,
             stage: str | None = None, bad: Iterable[tuple[str, PatternLike]] | None = None) -> Match | None:
        """Like expect, but None on timeout: for loops that do something between waits."""
        compiled = compile_patterns(patterns)
        bad_compiled = [(name, compile_pattern(p)) for name, p in (self.bad_patterns if bad is None else bad)]
        try:
            result = self.buffer.expect(compiled, timeout, bad_compiled)
        except BufferClosed:
            raise BenchError("the console was closed while waiting for the board") from None
        if isinstance(result, BadMatch):
            raise BadPatternSeen(f"{result.name} at stage {stage or '?'}: {result.line!r}",
                                 name=result.name, line=result.line, stage=stage, tail=self.tail())
        return result

    def expect(self, patterns: PatternLike | Sequence[PatternLike], timeout: float, *,
               stage: str | None = None, what: str | None = None,
               bad: Iterable[tuple[str, PatternLike]] | None = None) -> Match:
        """Wait for the earliest of `patterns`; fail fast on a bad pattern, with the console tail."""
        result = self.poll(patterns, timeout, stage=stage, bad=bad)
        if result is None:
            self.raise_timeout(what or " or ".join(repr(p.pattern) for p in compile_patterns(patterns)),
                               timeout, stage)
        return result

    def raise_timeout(self, expected: str, waited: float, stage: str | None) -> NoReturn:
        """A missing port is the bench's fault; silence on a present port is the board's."""
        if self._lost_since is not None:
            raise BenchError(
                f"the console port ({self.where}) disappeared {time.monotonic() - self._lost_since:.1f} s ago "
                f"({self._lost_reason}) and has not come back while waiting for {expected}")
        raise ConsoleTimeout(f"timed out after {waited:.1f} s waiting for {expected}"
                             + (f" (stage {stage})" if stage else ""), stage=stage, tail=self.tail())

    # -- captures ------------------------------------------------------------------------------
    def mark(self) -> None:
        """Start a new capture (at power-on): bytes from here on are that boot's own evidence."""
        with self._since_mark_lock:
            self._since_mark = bytearray()

    def received_since_mark(self, start: int = 0) -> bytes:
        """Raw bytes this console received since mark(), from `start`: kept in memory, never read
        back from a file another process could have written."""
        with self._since_mark_lock:
            return bytes(self._since_mark[start:])

    def tail(self, lines: int = 40) -> list[str]:
        return self.buffer.tail(lines)

    def discard_pending(self) -> None:
        self.buffer.discard_pending()

    # -- typing ------------------------------------------------------------------------------
    def send(self, data: str | bytes, *, char_delay_s: float | None = None) -> None:
        """Type `data`, pausing between characters as slow UART receivers need."""
        raw = data.encode() if isinstance(data, str) else data
        delay = self.char_delay_s if char_delay_s is None else char_delay_s
        with self._port_lock:
            port = self._port
            if port is None:
                raise BenchError(f"cannot type into the console: its port is gone ({self._lost_reason})")
            try:
                if delay <= 0:
                    port.write(raw)
                else:
                    for i in range(len(raw)):
                        port.write(raw[i:i + 1])
                        port.flush()
                        time.sleep(delay)
                port.flush()
            except PORT_ERRORS as exc:
                raise BenchError(f"writing to the console {self.where} failed: {exc}") from exc

    def sendline(self, text: str = "") -> None:
        self.send(text + "\n")

    def sendcontrol(self, char: str) -> None:
        """sendcontrol('c') sends Ctrl-C."""
        self.send(bytes([ord(char.lower()) & 0x1F]), char_delay_s=0)
