"""The harness's exceptions, split by who is to blame.

The split is the verdict: a `BoardFailure` means the board or its image did wrong (the gate
fails), a `BenchError` means the bench did wrong (the gate errors), and a `ConfigError` means a
file the user wrote is wrong (the run stops before touching hardware).
"""

from __future__ import annotations

from collections.abc import Sequence


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A board profile, bench file or option is wrong; the message names file, line and key."""


class BenchError(HarnessError):
    """Infrastructure trouble (serial port, relay, flash target): never the board's fault."""


class BoardFailure(HarnessError):
    """The board did not do what a gate expects; carries the console tail as evidence."""

    def __init__(self, message: str, *, stage: str | None = None, tail: Sequence[str] = ()) -> None:
        self.stage = stage
        self.tail = list(tail)
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        if self.tail:
            text += "\n--- last console lines ---\n" + "\n".join(self.tail)
        return text


class Blocked(HarnessError):
    """A gate's evidence can only appear after a stage that failed: its verdict is "blocked", quoting why.

    Not the gate's own failure (the stage's failure is reported where it happened), and not a pass.
    """


class ConsoleTimeout(BoardFailure):
    """Nothing matched before the deadline."""


class BadPatternSeen(BoardFailure):
    """A line that must never appear at this stage (panic, abort, unexpected reset) appeared."""

    def __init__(self, message: str, *, name: str, line: str, stage: str | None = None,
                 tail: Sequence[str] = ()) -> None:
        self.name = name
        self.line = line
        super().__init__(message, stage=stage, tail=tail)
