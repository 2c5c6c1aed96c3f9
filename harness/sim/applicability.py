"""Which virtual-board faults a board can have, decided from its transcript before anything is powered.

A fault that a board's transcript gives nothing to act on would be injected as nothing: the run
would pass and claim the failure was handled. So a fault applies to a board only when its
transcript says what the fault prints (board-specific faults), has the stage a hang stops in,
prints the lines a missing feature removes, or prints any line for serial noise to fall between.
The CLI, the pytest plugin and the virtual board itself all ask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.errors import ConfigError
from harness.sim.faults import FAULTS, FEATURE_FAULTS, LINK_FAULTS, validate_faults
from harness.sim.transcript import Transcript, load_transcript, transcripts_dir


def has_transcript(board: str) -> bool:
    """Whether the virtual board can play `board` (a board profile name) from its own transcript."""
    return (transcripts_dir() / f"{board}.yaml").is_file()


def boards_with_transcripts() -> list[str]:
    """The boards the virtual board can play: one transcript file each (fault-only transcripts live below)."""
    return sorted(p.stem for p in transcripts_dir().glob("*.yaml"))


def require_transcript(board: str) -> None:
    """Raise a ConfigError naming the boards that can be played when `board` has no transcript."""
    if has_transcript(board):
        return
    raise ConfigError(
        f"the virtual board cannot play '{board}': there is no transcript harness/sim/transcripts/{board}.yaml "
        f"saying what it prints; boards it can play: {', '.join(boards_with_transcripts()) or 'none'} "
        "(a QEMU board profile runs on --bench qemu)")


def fault_problem(fault: str, transcript: Transcript) -> str | None:
    """Why `fault` would change nothing on a board playing `transcript`; None when it applies."""
    if fault.startswith("hang:"):
        stage = fault.split(":", 1)[1]
        return None if transcript.stage(stage) is not None else f"its transcript has no stage '{stage}' to hang in"
    if fault in FEATURE_FAULTS:
        feature = FEATURE_FAULTS[fault]
        if any(entry.when == feature for stage in transcript.stages for entry in stage.entries()):
            return None
        return f"its transcript prints no line that depends on '{feature}'"
    if fault in LINK_FAULTS:
        # Noise goes between printed lines; a UART that leaves with the power does so whatever is printed.
        if fault == "serial-noise" and not any(stage.lines for stage in transcript.stages):
            return "its transcript prints nothing to put noise between"
        return None
    return None if fault in transcript.faults else "its transcript defines no such fault"


def applicable_faults(transcript: Transcript) -> list[str]:
    return [fault for fault in FAULTS if fault_problem(fault, transcript) is None]


def check_transcript_faults(board: str, transcript: Transcript, faults: Iterable[str]) -> None:
    """Raise a ConfigError naming every fault that does not apply, and the faults that would."""
    problems = [f"virtual board fault '{fault}' does not apply to {board}: {problem}"
                for fault in faults if (problem := fault_problem(fault, transcript)) is not None]
    if problems:
        allowed = ", ".join(applicable_faults(transcript)) or "none"
        raise ConfigError("; ".join(problems) + f"; faults for {board}: {allowed}")


def check_faults_apply(board: str, faults: Iterable[str], transcript: str | Path | None = None) -> None:
    """Refuse, before power-on, faults that are unknown or that `board` cannot have.

    `transcript` is the file a bench plays instead of the board's own (a bench's `sim.transcript`).
    A board with no transcript of its own cannot be played at all, faults or not.
    """
    names = validate_faults(list(faults))
    if transcript is None:
        require_transcript(board)
    check_transcript_faults(board, load_transcript(board, transcript), names)


def fault_boards(boards: Iterable[str] | None = None) -> dict[str, list[str]]:
    """fault -> the boards (of `boards`, default every board with a transcript) it applies to."""
    transcripts = {board: load_transcript(board) for board in (boards_with_transcripts() if boards is None else boards)}
    return {fault: [board for board, transcript in transcripts.items() if fault_problem(fault, transcript) is None]
            for fault in FAULTS}


def boards_for_fault(fault: str, boards: Iterable[str] | None = None) -> list[str]:
    """The boards (of `boards`, default every board with a transcript) that `fault` applies to."""
    validate_faults([fault])
    return fault_boards(boards)[fault]
