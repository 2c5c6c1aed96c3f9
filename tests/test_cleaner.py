"""The cleaner turns raw console bytes into matchable text, whatever the chunk boundaries.

Serial reads end anywhere: inside an ANSI escape (mainline U-Boot erases the line before its
countdown), inside an OSC title, inside a multibyte UTF-8 character. If a boundary can change the
cleaned text, a pattern matches on one run and not on the next, so the central property pinned here
is: feeding a capture in any pieces gives exactly what cleaning it whole gives.
"""

from __future__ import annotations

import pytest

from harness.console.cleaner import Cleaner, clean

# A capture with every kind of noise the cleaner removes or repairs.
CAPTURE = (
    b"U-Boot SPL 2024.01\r\n"
    b"\x1b[2K\x1b[1;32mOK\x1b[0m price \xe2\x82\xac and caf\xc3\xa9\r\n"  # CSI, 3- and 2-byte UTF-8
    b"bad \xff byte\x00 here\r\n"  # invalid UTF-8, NUL
    b"\x1b]0;window title\x07after-bel "  # OSC ended by BEL
    b"\x1b]2;other title\x1b\\after-st\r\n"  # OSC ended by ST (ESC backslash)
    b"\x1bMreverse-index\r\n"  # two-byte escape
    b"=> "
)
CAPTURE_TEXT = (
    "U-Boot SPL 2024.01\n"
    "OK price \u20ac and caf\u00e9\n"
    "bad \ufffd byte here\n"
    "after-bel after-st\n"
    "reverse-index\n"
    "=> "
)


def feed_all(pieces: list[bytes]) -> str:
    """Feed `pieces` to one Cleaner and flush, as the console reader does over a session."""
    cleaner = Cleaner()
    return "".join(cleaner.feed(piece) for piece in pieces) + cleaner.flush()


def test_csi_split_after_the_bracket_never_leaks() -> None:
    """ESC [ at the end of one read and `2K` at the start of the next: no `[2K` in the text."""
    cleaner = Cleaner()
    first = cleaner.feed(b"abc\x1b[")
    second = cleaner.feed(b"2Kdef")
    assert first == "abc"
    assert second == "def"
    assert cleaner.flush() == ""


@pytest.mark.parametrize("split", range(1, len(b"\x1b[1;32m")))
def test_csi_split_at_every_byte_never_leaks(split: int) -> None:
    """Whatever byte of a colour sequence a read ends on, only the plain text comes out."""
    data = b"pre \x1b[1;32mgreen\x1b[0m post"
    assert feed_all([data[: 4 + split], data[4 + split:]]) == "pre green post"


def test_lone_escape_at_the_end_of_a_read_is_held_back() -> None:
    """A read ending right after ESC must not emit the ESC (its sequence follows in the next read)."""
    cleaner = Cleaner()
    assert cleaner.feed(b"line\x1b") == "line"
    assert cleaner.feed(b"[Kmore") == "more"


@pytest.mark.parametrize(("data", "text"), [
    (b"a\x1b]0;my title\x07b", "ab"),
    (b"a\x1b]0;my title\x1b\\b", "ab"),
    (b"a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
])
def test_osc_strings_are_removed(data: bytes, text: str) -> None:
    """OSC strings (window titles, hyperlinks) ended by BEL or ST vanish, text around them stays."""
    assert clean(data) == text


@pytest.mark.parametrize("split", range(1, len(b"\x1b]0;title\x1b\\")))
def test_osc_split_anywhere_never_leaks_its_title(split: int) -> None:
    """An OSC cut by a read boundary, including between the ESC and backslash of ST, is still removed."""
    data = b"a\x1b]0;title\x1b\\b"
    assert feed_all([data[: 1 + split], data[1 + split:]]) == "ab"


def test_cr_and_nul_are_removed() -> None:
    """CRLF becomes LF and NUL padding disappears, so `$` and literal patterns see plain lines."""
    assert clean(b"one\r\ntwo\r\n\x00\x00three\rfour\r\n") == "one\ntwo\nthreefour\n"


def test_invalid_utf8_becomes_replacement_without_losing_neighbours() -> None:
    """Line noise (baud mismatch, glitches at power-on) is replaced, not allowed to eat good text."""
    assert clean(b"ab\xffcd\xfe\xfeef") == "ab\ufffdcd\ufffd\ufffdef"
    assert clean(b"DDR \xc3(ok") == "DDR \ufffd(ok"  # broken 2-byte start, next char kept


def test_truncated_sequence_before_ascii_is_replaced_once() -> None:
    """An unfinished multibyte sequence followed by ASCII in the next read: one U+FFFD, ASCII kept."""
    cleaner = Cleaner()
    assert cleaner.feed(b"x\xe2\x82") == "x"
    assert cleaner.feed(b"yz") == "\ufffdyz"


@pytest.mark.parametrize(("data", "split"), [
    (b"caf\xc3\xa9!", 4),  # 2-byte char cut in the middle
    (b"\xe2\x82\xac!", 1),  # 3-byte char cut after the lead byte
    (b"\xe2\x82\xac!", 2),  # ... and before the last byte
    (b"\xf0\x9f\x98\x80!", 3),  # 4-byte char
])
def test_multibyte_char_split_across_reads_decodes_once(data: bytes, split: int) -> None:
    """A character cut by a read boundary comes out whole, exactly once, with no U+FFFD."""
    cleaner = Cleaner()
    first = cleaner.feed(data[:split])
    second = cleaner.feed(data[split:])
    assert first + second == data.decode()
    assert "\ufffd" not in first + second


def test_flush_releases_an_unfinished_tail() -> None:
    """At close, held-back bytes (half a character) are not silently dropped."""
    cleaner = Cleaner()
    assert cleaner.feed(b"end\xc3") == "end"
    assert cleaner.flush() == "\ufffd"


def test_clean_whole_capture() -> None:
    """`clean()` (offline analysis of console.raw) gives the expected text for a noisy capture."""
    assert clean(CAPTURE) == CAPTURE_TEXT


def test_any_two_piece_split_equals_clean() -> None:
    """For every split point, live cleaning equals offline cleaning: a match never depends on chunking."""
    for i in range(len(CAPTURE) + 1):
        assert feed_all([CAPTURE[:i], CAPTURE[i:]]) == CAPTURE_TEXT, f"split at byte {i}"


def test_byte_at_a_time_equals_clean() -> None:
    """The worst chunking (one byte per read, slow UARTs) still gives exactly the offline text."""
    assert feed_all([CAPTURE[i:i + 1] for i in range(len(CAPTURE))]) == CAPTURE_TEXT
