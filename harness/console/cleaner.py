"""Turn raw console bytes into text fit for matching, one chunk at a time.

Chunks end anywhere: in the middle of a UTF-8 sequence or of an ANSI escape (mainline U-Boot
erases the line before its countdown). The cleaner holds back an unfinished tail so a split
escape never leaks into the text and a split character is never replaced twice.
"""

from __future__ import annotations

import codecs
import re

# CSI sequences (ESC [ ... final), OSC strings (ESC ] ... BEL/ST), and two-byte escapes.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# An OSC may be cut between the ESC and the backslash of its ST terminator: hold that ESC too.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?)?\Z")
_DROPPED = re.compile(r"[\r\x00]")


class Cleaner:
    """Incremental bytes -> text: UTF-8 with replacement, escapes, CR and NUL removed."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> str:
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        unfinished = _UNFINISHED.search(text, max(0, len(text) - 256))
        if unfinished:
            self._pending = text[unfinished.start():]
            text = text[: unfinished.start()]
        return _DROPPED.sub("", _ESCAPE.sub("", text))

    def flush(self) -> str:
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return _DROPPED.sub("", _ESCAPE.sub("", text))


def clean(data: bytes) -> str:
    """Clean a whole capture at once (offline analysis)."""
    cleaner = Cleaner()
    return cleaner.feed(data) + cleaner.flush()
