"""Flash progress: one refreshing line on a terminal, one line per 10% anywhere else.

Written here rather than taken from `rich` or `tqdm`: the non-terminal mode (a CI log, the run's
console.log) needs its own rule anyway — a line per 10%, not a bar redrawn into a file — and the
terminal line is a dozen lines of arithmetic; neither is worth a dependency on every bench host.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

MB = 1_000_000
REFRESH_S = 0.25  # terminal redraws at most this often: a redraw per 4 MiB chunk would cost more than it shows


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{secs:02d}"


class Progress:
    """Reports `update(done, fraction)` calls: `done` decompressed bytes, `fraction` of the work (0..1).

    `fraction` comes from the decompressed size when known, else from the compressed bytes read,
    so an `.xz` whose size is unknown until its end still gets a percentage and an ETA.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._drawn = float("-inf")
        self._decile = 0  # last 10% step reported in line mode
        self._width = 0

    def _rate(self, done: int) -> float:
        elapsed = self._clock() - self._started
        return done / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self.tty:
            now = self._clock()
            if now - self._drawn >= REFRESH_S or fraction >= 1.0:
                self._drawn = now
                rate = self._rate(done)
                elapsed = now - self._started
                eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
                text = (f"{self.label}: {fraction:4.0%} {done / MB:,.0f} MB  {rate / MB:,.1f} MB/s  "
                        f"ETA {_eta(eta)}")
                self.stream.write("\r" + text.ljust(self._width))
                self._width = len(text)
                self.stream.flush()
            return
        while self._decile < 10 and fraction * 10 >= self._decile + 1 - 1e-9:
            self._decile += 1
            self.stream.write(f"{self.label}: {self._decile * 10}% ({done / MB:,.0f} MB, "
                              f"{self._rate(done) / MB:,.1f} MB/s)\n")
            self.stream.flush()

    def finish(self, message: str) -> None:
        """End the line (terminal) and print the outcome on its own line."""
        if self.tty and self._width:
            self.stream.write("\n")
        self.stream.write(f"{self.label}: {message}\n")
        self.stream.flush()
