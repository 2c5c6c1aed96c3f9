"""Power for a virtual board in the same process: the switch is a method call."""

from __future__ import annotations

from harness.sim.board import VirtualBoard


class VirtualBoardPower:
    description = "virtual board power (in process)"

    def __init__(self, board: VirtualBoard) -> None:
        self.board = board

    def set(self, on: bool) -> None:
        self.board.power(on)

    def get(self) -> bool | None:
        return self.board.powered
