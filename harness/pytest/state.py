"""What the plugin knows about one run, kept in the pytest config's stash."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.bench import Bench
from harness.config.profile import BoardProfile, board_dirs, known_boards
from harness.pytest import run_dir, verdicts
from harness.pytest.stopping import SignalGuard
from harness.session import BringUpSession

NEEDS_BOARD = "needs a board: pass --board NAME (known: {known}) and --bench (sim for the virtual board)"


class HarnessState:
    def __init__(self, config: pytest.Config) -> None:
        self.root = Path(config.rootpath)
        boards_option = config.getoption("boards_dir")
        self.board_dirs = board_dirs(self.root, Path(boards_option).resolve() if boards_option else None)
        self.board_name: str | None = config.getoption("board")
        self.bench_name: str = config.getoption("bench")
        self.image: str | None = config.getoption("image")
        report_dir = config.getoption("report_dir")
        self.report_dir = Path(report_dir).resolve() if report_dir else None
        self.profile: BoardProfile | None = None
        self.profile_file: Path | None = None
        self.bench: Bench | None = None
        self.bench_file: Path | None = None  # None for the built-in benches
        self.session: BringUpSession | None = None
        self.skipped_for_board = 0
        self.verdicts: dict[str, verdicts.GateVerdict] = {}
        self.run_dir: run_dir.RunDirectory | None = None
        self.signals = SignalGuard()
        self.keep_on_failure: bool = config.getoption("keep_on_failure")
        self.left_on = False

    def keep_board_on(self) -> bool:
        """Asked when the session ends: leave the board powered only for a failure a person should look
        at (`--keep-on-failure`), never after a signal (a CI cancel must still switch it off)."""
        self.left_on = self.keep_on_failure and self.signals.first is None and any(
            v.verdict in (verdicts.FAIL, verdicts.ERROR, verdicts.BLOCKED) for v in self.verdicts.values())
        return self.left_on

    @property
    def log_dir(self) -> Path:
        return self.report_dir or self.root / "reports" / "latest"

    @property
    def needs_board(self) -> str:
        return NEEDS_BOARD.format(known=", ".join(known_boards(self.board_dirs)))


_key = pytest.StashKey[HarnessState]()


def new_state(config: pytest.Config) -> HarnessState:
    config.stash[_key] = HarnessState(config)
    return config.stash[_key]


def state_of(config: pytest.Config) -> HarnessState:
    return config.stash[_key]


def state_if_any(config: pytest.Config) -> HarnessState | None:
    return config.stash.get(_key, None)
