"""ExpectBuffer: what a wait sees, what it consumes, and how much text it re-reads.

Gates decide pass or fail from these semantics, so they are pinned without any serial port: text
that arrived while nobody waited still counts, line anchors mean real lines (never half a line that
is still arriving), a match is consumed once, and a long wait costs time linear in the bytes
received rather than re-searching the whole backlog on every read.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from harness.console.buffer import BadMatch, BufferClosed, ExpectBuffer, Match, dropped_marker


def rx(pattern: str) -> re.Pattern[str]:
    """Compile as the console does (MULTILINE, so `^`/`$` are line anchors)."""
    return re.compile(pattern, re.MULTILINE)


class RecordingPattern:
    """Stands in for a compiled pattern: records how much text each search looked at.

    After each search it calls `after_search`, which lets a test append the next chunk exactly between
    two searches of one `expect` call, deterministically and without a second thread.
    """

    def __init__(self, pattern: str, after_search: Callable[[], None] | None = None) -> None:
        self.compiled = rx(pattern)
        self.pattern = pattern
        self.searched: list[int] = []
        self.after_search = after_search

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        self.searched.append(len(text) - pos)
        found = self.compiled.search(text, pos)
        if self.after_search is not None:
            self.after_search()
        return found

    def as_pattern(self) -> re.Pattern[str]:
        return cast(Any, self)


def feeder(buffer: ExpectBuffer, chunks: list[str]) -> Callable[[], None]:
    """An `after_search` hook that appends the next of `chunks` after each search."""
    pending = list(chunks)

    def feed() -> None:
        if pending:
            buffer.append(pending.pop(0))

    return feed


def expect_match(buffer: ExpectBuffer, pattern: str, timeout: float = 0) -> Match:
    found = buffer.expect([rx(pattern)], timeout)
    assert isinstance(found, Match), f"{pattern!r} did not match"
    return found


def test_text_appended_while_nobody_waits_is_found_later() -> None:
    """DDR lines printed in the first milliseconds after power-on count for a later expect."""
    buffer = ExpectBuffer()
    buffer.append("DDR V1.19 20240229\nLPDDR5, 2400MHz\n")
    found = expect_match(buffer, r"^LPDDR5, (\d+)MHz$")
    assert found.group(1) == "2400"


def test_earliest_match_among_patterns_wins_and_index_says_which() -> None:
    """With several patterns, the one matching earliest in the text wins, not the first listed."""
    buffer = ExpectBuffer()
    buffer.append("U-Boot SPL 2024.01\nU-Boot 2024.01 (Jan 01 2024)\nHit any key to stop autoboot:  2\n")
    found = buffer.expect([rx("Hit any key"), rx(r"^U-Boot (?!SPL)"), rx("^U-Boot SPL")], 0)
    assert isinstance(found, Match)
    assert found.index == 2
    assert found.text == "U-Boot SPL"
    assert found.before == ""


def test_dollar_does_not_match_a_half_line() -> None:
    """`$` needs a real newline: half of "LPDDR5, 2400MHz" must wait, then give the full number."""
    buffer = ExpectBuffer()
    pattern = rx(r"^LPDDR5, (\d+)MHz$")
    buffer.append("LPDDR5, 24")
    assert buffer.expect([pattern], 0) is None
    buffer.append("00MHz\n")
    found = buffer.expect([pattern], 0)
    assert isinstance(found, Match)
    assert found.group(1) == "2400"


def test_dollar_waits_for_the_line_end_even_when_the_text_so_far_fits() -> None:
    """"LPDDR5, 2400MHz" without its newline may still grow (", 2 ranks"): no match until the line ends."""
    buffer = ExpectBuffer()
    pattern = rx(r"^LPDDR5, (\d+)MHz$")
    buffer.append("LPDDR5, 2400MHz")
    assert buffer.expect([pattern], 0) is None
    buffer.append(" x2\nLPDDR5, 2112MHz")
    assert buffer.expect([pattern], 0) is None
    buffer.append("\n")
    assert expect_match(buffer, r"^LPDDR5, (\d+)MHz$").group(1) == "2112"


@pytest.mark.parametrize(("pattern", "first", "rest", "group"), [
    (r"^Model: (.+)$", "Model: FriendlyElec Nano", "Pi M6\n", "FriendlyElec NanoPi M6"),
    (r"^DDR Version (\S+)", "DDR Version V1.1", "9 20240229\n", "V1.19"),
])
def test_a_match_running_into_the_end_waits_for_the_rest(pattern: str, first: str, rest: str, group: str) -> None:
    r"""`(.+)$` or `\S+` on a line still arriving must not return a truncated value (or the end sentinel)."""
    buffer = ExpectBuffer()
    compiled = rx(pattern)
    buffer.append(first)
    assert buffer.expect([compiled], 0) is None
    buffer.append(rest)
    found = buffer.expect([compiled], 0)
    assert isinstance(found, Match)
    assert found.group(1) == group
    assert "\x00" not in found.text


def test_caret_after_a_match_that_ended_mid_line() -> None:
    """A new search starting where a match ended mid-line must not treat that spot as a line start."""
    buffer = ExpectBuffer()
    buffer.append("A: READY\n")
    expect_match(buffer, "A: ")
    assert buffer.expect([rx("^READY")], 0) is None
    buffer.append("READY\n")
    found = expect_match(buffer, "^READY")
    assert found.start == len("A: READY\n")


def test_caret_when_a_wait_resumes_mid_line() -> None:
    """Inside one wait, the search resumes `overlap` chars back, mid-line: `^` there is no line start."""
    buffer = ExpectBuffer(overlap=2)
    buffer.append("boot: RE")  # the resumed search starts at "RE...", preceded by a space
    pattern = RecordingPattern(r"^READY$", feeder(buffer, ["ADY\n", "READY\n"]))
    found = buffer.expect([pattern.as_pattern()], 2)
    assert isinstance(found, Match)
    assert found.start == len("boot: READY\n")
    assert len(pattern.searched) == 3


def test_pattern_split_across_two_appends_matches() -> None:
    """A line cut by a read boundary, with a failed search in between, still matches (overlap)."""
    buffer = ExpectBuffer()
    buffer.append("Hit any key to st")
    pattern = RecordingPattern(r"Hit any key to stop autoboot:\s*(\d)", feeder(buffer, ["op autoboot:  2\n"]))
    found = buffer.expect([pattern.as_pattern()], 2)
    assert isinstance(found, Match)
    assert found.group(1) == "2"
    assert len(pattern.searched) == 2, "the first search must have failed on the half line"


def test_a_match_consumes_its_line() -> None:
    """Two waits for the same line need two such lines: a stale one cannot satisfy the next wait."""
    buffer = ExpectBuffer()
    buffer.append("=> \n")
    first = expect_match(buffer, "=> ")
    assert buffer.expect([rx("=> ")], 0) is None
    buffer.append("=> \n")
    second = expect_match(buffer, "=> ")
    assert second.start > first.start


def test_bad_pattern_before_the_good_match_is_returned() -> None:
    """A panic printed before the awaited text fails the wait, naming the pattern and the whole line."""
    buffer = ExpectBuffer()
    buffer.append("Kernel panic - not syncing: VFS: Unable to mount root fs\nlogin: \n")
    found = buffer.expect([rx("login: ")], 0, bad=[("kernel-panic", rx("Kernel panic - not syncing"))])
    assert isinstance(found, BadMatch)
    assert found.name == "kernel-panic"
    assert found.line == "Kernel panic - not syncing: VFS: Unable to mount root fs"


def test_good_match_before_a_bad_pattern_wins() -> None:
    """What the wait was for happened first; a later bad line belongs to a later wait."""
    buffer = ExpectBuffer()
    buffer.append("login: \nKernel panic - not syncing: late\n")
    bad = [("kernel-panic", rx("Kernel panic - not syncing"))]
    assert isinstance(buffer.expect([rx("login: ")], 0, bad=bad), Match)
    later = buffer.expect([rx("never")], 0, bad=bad)
    assert isinstance(later, BadMatch)
    assert later.line == "Kernel panic - not syncing: late"


def test_timeout_returns_none_after_the_timeout() -> None:
    """A wait with nothing matching gives up (None), and not before its timeout."""
    buffer = ExpectBuffer()
    buffer.append("U-Boot 2024.01\n")
    started = time.monotonic()
    assert buffer.expect([rx("Starting kernel")], 0.2) is None
    assert time.monotonic() - started >= 0.2


def test_a_wait_sees_text_appended_by_another_thread() -> None:
    """The reader thread appends while a test waits: the wait wakes up and matches."""
    buffer = ExpectBuffer()
    timer = threading.Timer(0.05, buffer.append, args=("Starting kernel ...\n",))
    timer.start()
    try:
        assert isinstance(buffer.expect([rx("Starting kernel")], 5), Match)
    finally:
        timer.cancel()


def test_arrived_is_the_time_of_the_chunk_holding_the_last_matched_char() -> None:
    """Stage timestamps use `arrived`: when the line was complete, not when the wait noticed it."""
    buffer = ExpectBuffer()
    buffer.append("LPDDR5, 24", arrived=100.0)
    buffer.append("00MHz\n", arrived=200.0)
    buffer.append("U-Boot SPL 2024.01\n", arrived=300.0)
    ddr = expect_match(buffer, r"^LPDDR5, (\d+)MHz$")
    assert ddr.arrived == 200.0
    assert expect_match(buffer, r"^U-Boot SPL ").arrived == 300.0


def test_arrived_of_a_match_inside_one_chunk_ignores_later_chunks() -> None:
    """A match wholly inside an early chunk carries that chunk's time, whatever came after."""
    buffer = ExpectBuffer()
    buffer.append("DDR V1.19\n", arrived=1.5)
    buffer.append("more\n", arrived=9.0)
    assert expect_match(buffer, r"^DDR (\S+)$").arrived == 1.5


def test_a_long_wait_searches_only_overlap_plus_new_text() -> None:
    """After one failed search over the backlog, each later search covers overlap + the new chunk only.

    This is what keeps a session's matching cost linear in the bytes received: 5 MB arriving during
    one wait must not be re-searched from the start on every read.
    """
    overlap, chunk_size = 4096, 4096
    buffer = ExpectBuffer(overlap=overlap)
    line = "." * 63 + "\n"
    chunk = line * (chunk_size // len(line))
    backlog = line * (1024 * 1024 // len(line))
    buffer.append(backlog)
    chunks = [chunk] * (5 * 1024 * 1024 // chunk_size) + ["READY\n"]
    pattern = RecordingPattern(r"^READY$", feeder(buffer, chunks))
    found = buffer.expect([pattern.as_pattern()], 10)
    assert isinstance(found, Match)
    assert found.start == len(backlog) + 5 * 1024 * 1024
    assert pattern.searched[0] >= len(backlog)
    assert len(pattern.searched) == len(chunks) + 1
    assert max(pattern.searched[1:]) <= overlap + chunk_size + 4


def test_tail_returns_the_last_non_empty_lines() -> None:
    """Error messages quote tail(): the last N real lines, blank lines and the final newline skipped."""
    buffer = ExpectBuffer()
    buffer.append("one\n\ntwo\n")
    buffer.append("thr")
    buffer.append("ee\n\n")
    assert buffer.tail(2) == ["two", "three"]
    assert buffer.tail(40) == ["one", "two", "three"]
    buffer.append("four")
    assert buffer.tail(2) == ["three", "four"]
    assert buffer.tail(0) == []


def test_tail_looks_past_runs_of_blank_lines() -> None:
    """Blank lines at the end (U-Boot prints them) must not crowd the real lines out of the tail."""
    buffer = ExpectBuffer()
    for text in ["U-Boot 2024.01\n", "=> \n", "\n" * 5, "\n", "\n\n"]:
        buffer.append(text)
    assert buffer.tail(2) == ["U-Boot 2024.01", "=> "]


def test_tail_includes_consumed_text() -> None:
    """The evidence for a timeout includes lines that earlier waits already matched."""
    buffer = ExpectBuffer()
    buffer.append("U-Boot 2024.01\n=> \n")
    expect_match(buffer, "=> ")
    assert buffer.tail(5) == ["U-Boot 2024.01", "=> "]


def test_discard_pending_hides_earlier_text() -> None:
    """After a power cycle, the previous boot's lines must not satisfy the new boot's waits."""
    buffer = ExpectBuffer()
    buffer.append("U-Boot SPL 2024.01\n")
    buffer.discard_pending()
    assert buffer.expect([rx("U-Boot SPL")], 0) is None
    buffer.append("U-Boot SPL 2024.01\n")
    assert isinstance(buffer.expect([rx("U-Boot SPL")], 0), Match)


def test_close_ends_a_waiting_expect_with_buffer_closed() -> None:
    """Closing the console must wake a waiter at once instead of leaving it to its long timeout."""
    buffer = ExpectBuffer()
    outcome: list[BaseException | object] = []

    def wait() -> None:
        try:
            outcome.append(buffer.expect([rx("never")], 30))
        except BufferClosed as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    buffer.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], BufferClosed)


def test_a_closed_buffer_still_gives_what_it_holds() -> None:
    """Text received before close can still be matched (the reader's final flush)."""
    buffer = ExpectBuffer()
    buffer.append("last words\n")
    buffer.close()
    assert isinstance(buffer.expect([rx("last words")], 1), Match)
    with pytest.raises(BufferClosed):
        buffer.expect([rx("more")], 1)


# -- what a match's `before` holds: a command's whole output ----------------------------------------
def _numbered_lines(count: int) -> list[str]:
    """Distinct lines, so a lost beginning or a reordering shows in a comparison."""
    return [f"line {i:04d} " + "x" * 40 + "\n" for i in range(count)]


def test_before_is_everything_that_arrived_during_the_wait_not_just_the_last_window() -> None:
    """60 KB arriving chunk by chunk while expect waits (a writer thread, one chunk per search) must come
    back whole in `before`: the U-Boot and shell drivers build `printenv`/`dmesg` output from it."""
    buffer = ExpectBuffer()
    lines = _numbered_lines(1300)
    chunks = ["".join(lines[i:i + 10]) for i in range(0, len(lines), 10)] + ["=END=0=\n"]
    searched = threading.Semaphore(0)
    pattern = RecordingPattern(r"^=END=(\d+)=$", after_search=searched.release)

    def write() -> None:
        for chunk in chunks:
            assert searched.acquire(timeout=5)
            buffer.append(chunk)

    writer = threading.Thread(target=write)
    writer.start()
    found = buffer.expect([pattern.as_pattern()], 10)
    writer.join(timeout=5)
    assert isinstance(found, Match)
    assert len("".join(lines)) > 60 * 1024
    assert len(pattern.searched) == len(chunks) + 1, "each chunk must have arrived while the wait searched"
    assert max(pattern.searched[1:]) <= buffer.overlap + len(chunks[0]) + 4, "the search window stays bounded"
    assert found.before == "".join(lines)


def test_before_starts_where_the_previous_match_ended() -> None:
    """Two commands in a row: the second's `before` holds none of the first's output."""
    buffer = ExpectBuffer()
    buffer.append("first output\n=A=\nsecond output\n=B=\n")
    assert expect_match(buffer, "^=A=$").before == "first output\n"
    assert expect_match(buffer, "^=B=$").before == "\nsecond output\n"


def test_before_past_its_limit_keeps_the_end_and_says_how_much_it_dropped() -> None:
    """A runaway output must not fill memory: the end (next to the marker) stays, and the first line says
    how many characters are gone, so nobody mistakes the remainder for the whole output."""
    buffer = ExpectBuffer(before_limit=100)
    lines = _numbered_lines(10)  # 510 characters
    for line in lines:
        buffer.append(line)
    buffer.append("=END=0=\n")
    text = "".join(lines)
    found = expect_match(buffer, "^=END=0=$")
    marker, _, kept = found.before.partition("\n")
    assert kept == text[-100:]
    assert marker == dropped_marker(len(text) - 100).rstrip("\n")
    assert "410 earlier characters dropped" in marker


def test_trimming_consumed_text_never_drops_unconsumed_chunks() -> None:
    """With almost nothing kept after a match, the old chunks go but the many still waiting all reach `before`."""
    buffer = ExpectBuffer(keep_consumed=1)
    for line in [f"old {i}\n" for i in range(300)] + ["=A=\n"]:
        buffer.append(line)
    pending = _numbered_lines(300)
    for line in pending:
        buffer.append(line)
    expect_match(buffer, "^=A=$")  # consumes 301 chunks: the old ones are dropped here
    buffer.append("=B=\n")
    assert "old 0" not in buffer.tail(1000), "consumed chunks should have been trimmed"
    assert expect_match(buffer, "^=B=$").before == "\n" + "".join(pending)


@pytest.mark.parametrize("settings", [{"keep_consumed": 0}, {"before_limit": -1}])
def test_settings_that_would_lose_text_are_refused(settings: dict[str, int]) -> None:
    """keep_consumed 0 would drop the character a resumed `^` needs; a negative limit makes no sense."""
    with pytest.raises(ValueError, match="keep_consumed"):
        ExpectBuffer(**settings)
