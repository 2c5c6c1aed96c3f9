"""One time limit for every loop that waits for something: polls, stage waits, API probes.

Hand-written loops (`deadline = time.monotonic() + s; while ...: time.sleep(0.5)`) each get the
edge cases a little differently: whether a last try happens at the limit, whether a slow try
pushes every later one back. `Deadline` decides them once: tries are spaced on a fixed grid of
intervals from the start (a slow try does not shift the next ones), a sleep never runs past the
limit, and after the sleep that reaches the limit the caller gets exactly one last try.

The clock and the sleep are parameters so that the rules are tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    """A limit `seconds` from now. `sleep(interval)` between tries; False from it means give up."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if seconds < 0:
            raise ValueError(f"a deadline cannot be {seconds} s away: it must be 0 or more")
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self.started = clock()
        self.end = self.started + seconds

    def elapsed(self) -> float:
        """Seconds since the deadline was set: what a timeout message reports as waited."""
        return self._clock() - self.started

    def remaining(self) -> float:
        """Seconds left, never negative: a wait inside the loop can use it as its own timeout."""
        return max(0.0, self.end - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.end

    def sleep(self, interval: float) -> bool:
        """Sleep until the next multiple of `interval` since the start, or until the deadline if sooner.

        Returns False, without sleeping, once the deadline has passed: the caller stops trying.
        Returns True after sleeping: the caller tries again (the sleep that reached the deadline
        still returns True, so the last try happens at the limit rather than one interval before).
        """
        if interval <= 0:
            raise ValueError(f"a polling interval must be more than 0 s, not {interval}")
        now = self._clock()
        if now >= self.end:
            return False
        since_start = now - self.started
        next_tick = self.started + (int(since_start // interval) + 1) * interval
        self._sleep(min(next_tick, self.end) - now)
        return True
