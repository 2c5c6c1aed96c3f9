"""The result of a command run on the board, whatever runs it (U-Boot's hush, a Linux shell),
and the two ways a command can let a gate down: a non-zero exit where 0 was required, and an
answer that never became the expected one while polling.

Both are `BoardFailure`s: the board answered, and answered wrongly. (A console that stops
answering is a `ConsoleTimeout`, a port that vanished a `BenchError`: raised by the console.)
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import BoardFailure

SHOWN_OUTPUT = 2000  # characters of output quoted in an error message; the result keeps all of it


@dataclass(frozen=True)
class CommandResult:
    command: str
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def shown(output: str, limit: int = SHOWN_OUTPUT) -> str:
    """The output as an error message quotes it: the end of it when long (errors print last)."""
    if not output:
        return "(no output)"
    if len(output) <= limit:
        return output
    return f"[... {len(output) - limit} characters before this ...]{output[-limit:]}"


class CommandFailed(BoardFailure):
    """`exec0` found a non-zero exit status: the message names the command, the status and the output."""

    def __init__(self, result: CommandResult, *, runner: str, stage: str | None = None) -> None:
        self.result = result
        super().__init__(f"{runner} command {result.command!r} exited {result.status}: {shown(result.output)}",
                         stage=stage)


class PollTimeout(BoardFailure):
    """`poll_until` never saw the answer it waited for; `last` is the final try's result (gates judge it)."""

    def __init__(self, last: CommandResult, *, runner: str, tries: int, waited: float,
                 stage: str | None = None) -> None:
        self.last = last
        self.tries = tries
        self.waited = waited
        super().__init__(
            f"{runner} command {last.command!r} did not give the expected answer within {waited:.1f} s "
            f"({tries} {'try' if tries == 1 else 'tries'}); the last exited {last.status}: {shown(last.output)}",
            stage=stage)
