"""The result of a command run on the board, whatever runs it (U-Boot's hush, a Linux shell)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    command: str
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0
