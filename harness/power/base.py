"""Power backends: one small class per way of switching a board, each with `set` and `get`.

The session only ever calls `set(True/False)`; whether a relay clicks, a plug is asked over
HTTP or a virtual board is told, is the bench's business.
"""

from __future__ import annotations

from typing import Protocol


class PowerSwitch(Protocol):
    description: str

    def set(self, on: bool) -> None:
        """Switch the board's supply; must not return before the switch has happened."""

    def get(self) -> bool | None:
        """The supply's state if the switch can tell, else None."""
