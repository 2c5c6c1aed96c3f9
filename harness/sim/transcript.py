"""Transcript templates: what a virtual board prints, as data.

A transcript lists the boot stages in order, each with its lines and the pause before each line,
the canned answers of U-Boot commands that only print, and how each fault changes the output.
A second board is a second file, not a code branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat

from harness.config.profile import Strict
from harness.config.yamlfile import load_model

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(template: str, values: Mapping[str, object]) -> str:
    """Replace `{name}` with its value; anything else in braces (Talos's JSON fields) stays as it is."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


class AutobootSpec(Strict):
    variant: Literal["mainline", "rockchip-vendor", "radxa-vendor"]
    text: str = Field(description="countdown text; {n} is the seconds left")
    seconds: PositiveFloat = 1.0


class Line(Strict):
    """One printed line, or an action (`do`), shown only when its feature is present."""

    text: str | None = None
    do: Literal["maintenance"] | None = None
    when: str | None = Field(default=None, description="feature that must be present: eth, emmc, sd, usb, ...")
    delay_ms: NonNegativeFloat | None = None


class StageScript(Strict):
    name: str
    delay_ms: NonNegativeFloat = 1.0
    lines: list[str | Line] = []
    autoboot: AutobootSpec | None = None

    def entries(self) -> list[Line]:
        return [Line(text=e) if isinstance(e, str) else e for e in self.lines]


class FaultScript(Strict):
    """How a fault changes the transcript: override variables, or cut a stage and print other lines."""

    stage: str | None = None
    after: NonNegativeInt | None = Field(default=None, description="lines of the stage printed before the fault")
    lines: list[str] = []
    vars: dict[str, str | int] = {}
    then: Literal["hang", "continue"] = "hang"


class Transcript(Strict):
    board: str
    vars: dict[str, str | int] = {}
    stages: list[StageScript]
    commands: dict[str, list[str]] = {}
    no_bootable: list[str] = []
    faults: dict[str, FaultScript] = {}

    def stage(self, name: str) -> StageScript | None:
        return next((s for s in self.stages if s.name == name), None)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.stages) if s.name == name)


def transcripts_dir() -> Path:
    """The virtual boards' transcripts, shipped inside the package beside this module."""
    return Path(str(resources.files("harness.sim") / "transcripts"))


def load_transcript(board: str, path: str | Path | None = None) -> Transcript:
    """The board's own transcript, or the file a bench names instead."""
    source = Path(path) if path is not None else transcripts_dir() / f"{board}.yaml"
    return load_model(source, Transcript, what="virtual board transcript")
