"""The expect buffer: cleaned console text, searched in a bounded window.

The reader thread appends; `expect` searches only text it has not searched yet plus a fixed
overlap, so the cost of a whole session is linear in the bytes received however long the log
grows. Text is kept as a list of chunks (appending to one big str would copy it every time).
Everything not yet consumed by a match is kept, so output that arrived while no test was waiting
is still there for the next `expect`, and a match's `before` is all the text since the previous
match (a command's whole output), not just the last search window; only past `BEFORE_LIMIT`
characters does it keep the end and say how much it dropped (the raw log keeps every byte).
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

# NUL never survives cleaning, so it can mark the end of the text: with it there, `$` matches
# only before a real newline, and `^LPDDR5, (\d+)MHz$` cannot match the half line "LPDDR5, 24".
_SENTINEL = "\x00"
# For patterns: "here the received text ends for now", i.e. a prompt waiting for input.
AT_END = "(?=\x00)"
# What `Match.before` holds at most: far more than any command prints (`printenv`, `dmesg`, `lsusb -v`
# are tens of KB), yet a forgotten wait over hours of console output cannot copy it all into memory.
BEFORE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Match:
    """A successful expect: which pattern, what it captured, and when its last byte arrived.

    `before` is all the text between the previous match and this one, whole: the command drivers
    build a command's output from it (see `BEFORE_LIMIT` for the one exception).
    """

    index: int
    pattern: re.Pattern[str]
    text: str
    groups: tuple[str | None, ...]
    named: dict[str, str | None]
    start: int
    end: int
    arrived: float
    before: str

    def group(self, n: int | str = 0) -> str | None:
        if n == 0:
            return self.text
        return self.named[n] if isinstance(n, str) else self.groups[n - 1]


@dataclass(frozen=True)
class BadMatch:
    name: str
    line: str
    arrived: float


class BufferClosed(Exception):
    """The reader stopped for good (console closed)."""


def dropped_marker(dropped: int) -> str:
    """The first line of a `before` that lost its beginning: says so, and where the rest is."""
    return f"[... {dropped} earlier characters dropped here; the console log has them ...]\n"


class ExpectBuffer:
    """Cleaned console text: the reader thread appends, `expect` searches it and consumes what matched.

    `overlap` is how far back a resumed search looks (longer than any pattern's match);
    `keep_consumed` is how much matched text stays for `tail()` (unconsumed text always stays);
    `before_limit` caps a match's `before`.
    """

    def __init__(self, *, overlap: int = 8192, keep_consumed: int = 256 * 1024,
                 before_limit: int = BEFORE_LIMIT) -> None:
        if keep_consumed < 1 or before_limit < 0:
            # One consumed character must stay: a search starts one back so `^` sees whether a line begins.
            raise ValueError("keep_consumed must be at least 1 and before_limit not negative")
        self.overlap = overlap
        self.keep_consumed = keep_consumed
        self.before_limit = before_limit
        self._chunks: list[str] = []
        self._starts: list[int] = []
        self._times: list[float] = []
        self._end = 0
        self._consumed = 0
        self._closed = False
        self._cond = threading.Condition()

    # -- writer side (reader thread) --------------------------------------------------------
    def append(self, text: str, arrived: float | None = None) -> None:
        if not text:
            return
        with self._cond:
            self._starts.append(self._end)
            self._chunks.append(text)
            self._times.append(time.monotonic() if arrived is None else arrived)
            self._end += len(text)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reader side ------------------------------------------------------------------------
    @property
    def received(self) -> int:
        """Characters of cleaned text received so far (absolute offset of the end)."""
        return self._end

    def _text_from(self, position: int, suffix: str = "") -> str:
        """Text from absolute `position` to the end, plus `suffix`, in one copy; caller holds the lock."""
        if not self._chunks:
            return suffix
        i = max(0, bisect.bisect_right(self._starts, position) - 1)
        head = self._chunks[i][max(0, position - self._starts[i]):]
        return "".join([head, *self._chunks[i + 1:], suffix])

    def _text_between(self, start: int, stop: int) -> str:
        """Text from absolute `start` to `stop`, joining only the chunks that hold it; caller holds the lock."""
        if start >= stop or not self._chunks:
            return ""
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        last = bisect.bisect_left(self._starts, stop)
        offset = self._starts[first]
        return "".join(self._chunks[first:last])[max(0, start - offset):stop - offset]

    def _before(self, stop: int) -> str:
        """Everything unconsumed before absolute `stop` (a match's start), capped at its end; caller holds the lock."""
        start = self._consumed
        dropped = max(0, stop - start - self.before_limit)
        text = self._text_between(start + dropped, stop)
        return dropped_marker(dropped) + text if dropped else text

    def _arrival(self, position: int) -> float:
        i = max(0, bisect.bisect_right(self._starts, position) - 1)
        return self._times[i]

    def _consume(self, position: int) -> None:
        """Move the consumed mark; drop only chunks that end `keep_consumed` before it, never unconsumed text."""
        self._consumed = max(self._consumed, position)
        keep_from = self._consumed - self.keep_consumed
        drop = bisect.bisect_right(self._starts, keep_from) - 1
        if drop > 64:  # drop in batches: deleting from a list head is linear
            del self._chunks[:drop], self._starts[:drop], self._times[:drop]

    def discard_pending(self) -> None:
        """Forget unconsumed text (after a power cycle, old output must not satisfy new waits)."""
        with self._cond:
            self._consume(self._end)

    def expect(self, patterns: Sequence[re.Pattern[str]], timeout: float,
               bad: Sequence[tuple[str, re.Pattern[str]]] = ()) -> Match | BadMatch | None:
        """First match of any pattern (earliest in the text), a bad pattern seen first, or None."""
        deadline = time.monotonic() + timeout
        scan_from = self._consumed
        while True:
            with self._cond:
                region_start = max(self._consumed, scan_from)
                text_from = max(self._starts[0] if self._starts else 0, region_start - 1)
                region = self._text_from(text_from, _SENTINEL)
                end = self._end
            pos = region_start - text_from
            found = _earliest(patterns, region, pos)
            harmful = _earliest([p for _, p in bad], region, pos)
            bad_first = harmful is not None and (found is None or harmful[1].start() <= found[1].start())
            first = harmful if bad_first else found
            if first is not None and first[1].end() == len(region):
                # It ran into the sentinel (`(.+)$`, `\S+` at the end): its line is still arriving, so wait.
                found = harmful = None
            if harmful is not None and bad_first:
                with self._cond:
                    self._consume(text_from + harmful[1].end())
                    arrived = self._arrival(text_from + harmful[1].end() - 1)
                return BadMatch(bad[harmful[0]][0], _line_around(region, harmful[1]), arrived)
            if found is not None:
                index, m = found
                stop = min(m.end(), len(region) - 1)
                with self._cond:
                    before = self._before(text_from + m.start())
                    self._consume(text_from + stop)
                    arrived = self._arrival(text_from + max(stop - 1, m.start()))
                return Match(index=index, pattern=patterns[index], text=m.group(0).rstrip(_SENTINEL),
                             groups=m.groups(), named=m.groupdict(), start=text_from + m.start(),
                             end=text_from + stop, arrived=arrived, before=before)
            scan_from = max(region_start, end - self.overlap)
            with self._cond:
                remaining = deadline - time.monotonic()
                if self._end == end:
                    if self._closed:
                        raise BufferClosed
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)

    def tail(self, lines: int = 40) -> list[str]:
        """The last `lines` non-blank lines of cleaned text, consumed or not: evidence for error messages."""
        if lines <= 0:
            return []
        with self._cond:
            collected: list[str] = []
            newlines = 0
            enough = lines
            for chunk in reversed(self._chunks):
                collected.append(chunk)
                newlines += chunk.count("\n")
                if newlines > enough:
                    # The first segment may be the end of an older line; blank lines do not count.
                    kept = [line for line in "".join(reversed(collected)).split("\n")[1:] if line.strip()]
                    if len(kept) >= lines:
                        return kept[-lines:]
                    enough *= 2
            text = "".join(reversed(collected))
        return [line for line in text.split("\n") if line.strip()][-lines:]


def _earliest(patterns: Sequence[re.Pattern[str]], text: str, pos: int) -> tuple[int, re.Match[str]] | None:
    best: tuple[int, re.Match[str]] | None = None
    for i, pattern in enumerate(patterns):
        m = pattern.search(text, pos)
        if m is not None and (best is None or m.start() < best[1].start()):
            best = (i, m)
    return best


def _line_around(text: str, m: re.Match[str]) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start: end if end >= 0 else len(text)].rstrip(_SENTINEL)
