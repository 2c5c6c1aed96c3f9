"""The pytest plugin: options, markers, the bring-up fixtures and the report.

Registered through the `pytest11` entry point, so `pytest --board nanopi-m6` works in any
directory once the package is installed. Gates collected without `--board` are skipped with one
reason, repeated in a single summary line, so they can never pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import report, verdicts
from harness.config.bench import Bench, load_bench
from harness.config.profile import BoardProfile, boards_dir, known_boards, load_profile
from harness.errors import ConfigError
from harness.rig import bring_up
from harness.session import BringUpSession
from harness.sim.faults import validate_faults

PHASES = {
    "environment": "roadmap phase 1: build toolchain, UART, flashing",
    "bootloader": "roadmap phase 2: DDR, U-Boot, storage, recovery",
    "kernel": "roadmap phase 3: kernel console, Ethernet, eMMC, USB, device tree",
    "overlay": "roadmap phase 4: Talos overlay, installer, maintenance mode",
    "cluster": "roadmap phase 5: eMMC boot, network, Omni, Kubernetes",
    "hardening": "roadmap phase 6: NVMe, cpufreq, thermal, watchdog",
}
NEEDS_BOARD = "needs a board: pass --board NAME (known: {known}) and --bench (sim for the virtual board)"

_state_key = pytest.StashKey["HarnessState"]()


class HarnessState:
    """What the plugin knows about this run; kept in the config stash."""

    def __init__(self, config: pytest.Config) -> None:
        self.root = Path(config.rootpath)
        self.boards_dir = boards_dir(self.root)
        self.board_name: str | None = config.getoption("board")
        self.bench_name: str = config.getoption("bench")
        self.image: str | None = config.getoption("image")
        report_dir = config.getoption("report_dir")
        self.report_dir = Path(report_dir).resolve() if report_dir else None
        self.profile: BoardProfile | None = None
        self.bench: Bench | None = None
        self.session: BringUpSession | None = None
        self.skipped_for_board = 0
        self.verdicts: dict[str, verdicts.GateVerdict] = {}

    @property
    def log_dir(self) -> Path:
        return self.report_dir or self.root / "reports" / "latest"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talos-harness", "Talos board bring-up harness")
    group.addoption("--board", default=None, metavar="NAME",
                    help="board profile: boards/NAME.yaml (or a path to a profile)")
    group.addoption("--bench", default="sim", metavar="NAME|PATH",
                    help="bench: 'sim' (built-in virtual board), a file in benches/, or a path (default: sim)")
    group.addoption("--image", default=None, metavar="PATH", help="disk image the bench flashes or boots")
    group.addoption("--sim-fault", action="append", default=[], metavar="NAME",
                    help="make the virtual board misbehave (repeatable); `hil sim --list-faults` lists them")
    group.addoption("--report-dir", default=None, metavar="DIR",
                    help="write report.html (self-contained) and the console logs to DIR")


@pytest.hookimpl(tryfirst=True)  # before pytest-html reads --html, which --report-dir sets
def pytest_configure(config: pytest.Config) -> None:
    for name, description in PHASES.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    config.addinivalue_line("markers", "requirement(*ids): roadmap requirement ids this gate proves (BOOT-01...)")
    state = HarnessState(config)
    config.stash[_state_key] = state
    if state.board_name is not None:
        try:
            state.profile = load_profile(state.board_name, state.boards_dir)
            state.bench = _with_faults(load_bench(state.bench_name, state.root / "benches"),
                                       config.getoption("sim_fault"))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    report.configure(config, state)


def _with_faults(bench: Bench, faults: list[str]) -> Bench:
    """Faults from the command line join the bench's own; the bench then records what really ran."""
    if not faults:
        return bench
    if bench.sim is None:
        raise ConfigError(f"--sim-fault works only on a virtual board; bench '{bench.name}' is {bench.kind}")
    merged = list(validate_faults([*bench.sim.faults, *faults]))
    return bench.model_copy(update={"sim": bench.sim.model_copy(update={"faults": merged})})


def _state(config: pytest.Config) -> HarnessState:
    return config.stash[_state_key]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if state.profile is not None:
        return
    reason = NEEDS_BOARD.format(known=", ".join(known_boards(state.boards_dir)))
    for item in items:
        if "bring_up_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))
            state.skipped_for_board += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = _state(terminalreporter.config)
    if state.skipped_for_board:
        terminalreporter.write_line(
            f"{state.skipped_for_board} gate(s) skipped: "
            + NEEDS_BOARD.format(known=", ".join(known_boards(state.boards_dir))), yellow=True)
    if state.verdicts:
        tally = verdicts.counts(state.verdicts)
        labels = {"fail": "fail (board)", "error": "error (bench)"}
        terminalreporter.write_line("gate verdicts: " + ", ".join(f"{n} {labels.get(k, k)}" for k, n in tally.items()))
    if state.session is not None:
        terminalreporter.write_line(f"board: {state.session.describe()}; console log: "
                                    f"{state.session.console.log.log_path}")


@pytest.fixture(scope="session")
def board_profile(pytestconfig: pytest.Config) -> BoardProfile:
    state = _state(pytestconfig)
    if state.profile is None:
        # Deliberate: a gate without a board has nothing to judge; the run says so once in its summary.
        pytest.skip(NEEDS_BOARD.format(known=", ".join(known_boards(state.boards_dir))))
    return state.profile


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config, board_profile: BoardProfile) -> Bench:
    state = _state(pytestconfig)
    assert state.bench is not None
    return state.bench


@pytest.fixture(scope="session")
def bring_up_session(pytestconfig: pytest.Config, board_profile: BoardProfile,
                     bench: Bench) -> Iterator[BringUpSession]:
    state = _state(pytestconfig)
    with bring_up(board_profile, bench, state.log_dir, image=state.image) as session:
        state.session = session
        yield session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    state = _state(item.config)
    verdicts.classify(item, call, rep)
    verdict = verdicts.verdict_of(item, rep, call) if rep.when == "call" or not rep.passed else None
    if verdict is not None:
        state.verdicts[item.nodeid] = verdict
    report.attach_console(item, rep, state.session)
    return rep


def pytest_runtest_setup(item: pytest.Item) -> None:
    report.mark_start(item, _state(item.config).session)
