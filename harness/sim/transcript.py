"""Transcript templates: what a virtual board prints, as data.

A transcript lists the boot stages in order, each with its lines and the pause before each line,
and the canned answers of the U-Boot commands that only print. A second board is a second file,
not a code branch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat

from harness.config.profile import Strict
from harness.config.yamlfile import load_model


class AutobootSpec(Strict):
    variant: Literal["mainline", "rockchip-vendor", "radxa-vendor"]
    text: str = Field(description="countdown text; {n} is the seconds left")
    seconds: PositiveFloat = 1.0


class StageScript(Strict):
    name: str
    delay_ms: NonNegativeFloat = 1.0
    lines: list[str] = []
    autoboot: AutobootSpec | None = None


class Transcript(Strict):
    board: str
    vars: dict[str, str | int] = {}
    stages: list[StageScript]
    commands: dict[str, list[str]] = {}

    def stage(self, name: str) -> StageScript | None:
        return next((s for s in self.stages if s.name == name), None)


def transcripts_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"


def load_transcript(board: str, path: str | Path | None = None) -> Transcript:
    """The board's own transcript, or the file a bench names instead."""
    source = Path(path) if path is not None else transcripts_dir() / f"{board}.yaml"
    return load_model(source, Transcript, what="virtual board transcript")
