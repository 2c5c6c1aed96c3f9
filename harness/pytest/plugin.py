"""The pytest plugin: options, markers, hooks; the fixtures live in harness.pytest.fixtures.

Registered through the `pytest11` entry point, so `pytest --board nanopi-m6` works in any
directory once the package is installed: with `--board` and no test path, the shipped gates
(harness/gates) are what runs; `--shipped-gates` adds them beside the user's own gate files. Gates
collected without `--board` are skipped with one reason, repeated in a single summary line, so
they can never pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.gates
from harness.config.bench import Bench, bench_path, load_bench
from harness.config.profile import load_profile, profile_path, shipped_boards_dir
from harness.console.secrets import secrets_of
from harness.errors import ConfigError
from harness.gates.registry import PHASES
from harness.pytest import masking, report, run_dir, verdicts
from harness.pytest.state import HarnessState, new_state, state_if_any, state_of
from harness.pytest.stopping import RunInterrupted
from harness.pytest.usage import check_image, check_run
from harness.sim.faults import validate_faults
from harness.transports.children import stop_all

pytest_plugins = ["harness.pytest.fixtures"]
SHIPPED_GATES = Path(harness.gates.__file__).parent


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
    group.addoption("--boards-dir", default=None, metavar="DIR",
                    help="your own board profiles, looked up before boards/ in the rootdir and the shipped ones")
    group.addoption("--keep-on-failure", action="store_true",
                    help="leave the board powered after a run with a failed or errored gate, for a person to look at")
    group.addoption("--shipped-gates", action="store_true",
                    help="run the shipped gates beside the test paths given (without paths they run anyway)")


@pytest.hookimpl(tryfirst=True)  # before pytest-html reads --html, which --report-dir sets
def pytest_configure(config: pytest.Config) -> None:
    for name, description in PHASES.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    config.addinivalue_line("markers", "requirement(*ids): roadmap requirement ids this gate proves (BOOT-01...)")
    state = new_state(config)
    _collect_shipped_gates(config, state)
    try:
        if state.board_name is not None:
            state.profile_file = profile_path(state.board_name, state.board_dirs)
            state.profile = load_profile(str(state.profile_file), state.board_dirs)
            state.bench_file = bench_path(state.bench_name, state.root / "benches")
            state.bench = _with_faults(load_bench(state.bench_name, state.root / "benches"),
                                       config.getoption("sim_fault"))
            if state.image is not None:
                state.image = str(check_image(state.image, option="--image"))
            check_run(state.profile, state.bench, image=state.image)
        if state.board_name is not None or state.report_dir is not None:
            # The directory is claimed last: a usage error must not move the previous record aside.
            state.run_dir = run_dir.claim(state.log_dir)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    masking.register(config, secrets_of(state.bench) if state.bench is not None else [])
    state.signals.install()
    report.configure(config, state)


def _collect_shipped_gates(config: pytest.Config, state: HarnessState) -> None:
    """With a board and no test path, the shipped gates are the run; `--shipped-gates` adds them to paths."""
    given = config.args_source == pytest.Config.ArgsSource.ARGS
    if state.board_name is not None and not given:
        config.args = [str(SHIPPED_GATES)]
    elif config.getoption("shipped_gates") and str(SHIPPED_GATES) not in config.args:
        config.args = [*config.args, str(SHIPPED_GATES)]


def pytest_unconfigure(config: pytest.Config) -> None:
    state = state_if_any(config)
    if state is None:
        return
    state.signals.uninstall()
    stop_all()  # a child whose owner never got to close it (a signal between its start and its cleanup)
    if state.run_dir is not None:
        state.run_dir.release()


def _with_faults(bench: Bench, faults: list[str]) -> Bench:
    """Faults from the command line join the bench's own; the bench then records what really ran."""
    if not faults:
        return bench
    if bench.sim is None:
        raise ConfigError(f"--sim-fault works only on a virtual board; bench '{bench.name}' is {bench.kind}")
    merged = list(validate_faults([*bench.sim.faults, *faults]))
    return bench.model_copy(update={"sim": bench.sim.model_copy(update={"faults": merged})})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = state_of(config)
    for item in items:
        _label_with_requirements(item)
    if state.profile is not None:
        return
    for item in items:
        if "bring_up_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=state.needs_board))
            state.skipped_for_board += 1


def _label_with_requirements(item: pytest.Item) -> None:
    """`-k BOOT-03` selects the gate by its requirement id; JUnit carries the id and the phase."""
    marker = item.get_closest_marker("requirement")
    if marker is None:
        return
    phase = next((name for name in PHASES if item.get_closest_marker(name) is not None), None)
    for requirement in marker.args:
        item.extra_keyword_matches.add(str(requirement))
        item.user_properties.append(("requirement", str(requirement)))
    if phase is not None:
        item.user_properties.append(("phase", phase))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A blocked gate is not a pass: a run with nothing failed but something blocked still exits non-zero."""
    state = state_of(session.config)
    if exitstatus == pytest.ExitCode.OK and any(v.verdict == verdicts.BLOCKED for v in state.verdicts.values()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = state_of(terminalreporter.config)
    if state.skipped_for_board:
        terminalreporter.write_line(
            f"{state.skipped_for_board} gate(s) skipped: {state.needs_board}", yellow=True)
    if state.profile_file is not None:
        shadows = (state.profile_file.parent.resolve() != shipped_boards_dir()
                   and (shipped_boards_dir() / state.profile_file.name).is_file())
        terminalreporter.write_line(f"board profile: {state.profile_file}"
                                    + (" (overrides the shipped one of that name)" if shadows else ""))
    if state.verdicts:
        tally = verdicts.counts(state.verdicts)
        terminalreporter.write_line(
            "gate verdicts: " + ", ".join(f"{n} {verdicts.LABELS.get(k, k)}" for k, n in tally.items()))
    if state.run_dir is not None and state.run_dir.moved_aside:
        terminalreporter.write_line(f"the previous run's record in {state.log_dir} was moved to "
                                    f"{state.log_dir / run_dir.PREVIOUS}")
    if state.left_on:
        terminalreporter.write_line("the board is left on for a person to look at (--keep-on-failure): "
                                    "switch it off with `hil power off --bench ...`", yellow=True)
    if state.session is not None:
        terminalreporter.write_line(f"board: {state.session.describe()}; console log: "
                                    f"{state.session.console.log.log_path}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    state = state_of(item.config)
    verdicts.classify(item, call, rep)
    verdict = verdicts.verdict_of(item, rep, call) if rep.when == "call" or not rep.passed else None
    if verdict is not None:
        state.verdicts[item.nodeid] = verdict
    report.attach_console(item, rep, state.session)
    return rep


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = state_of(item.config)
    report.mark_start(item, state.session)
    marker = item.get_closest_marker("requirement")
    if state.session is not None:
        state.session.current_gate = " ".join(map(str, marker.args)) if marker else item.name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """A gate running when the run is stopped gets a report of its own, verdict "interrupted"."""
    try:
        return (yield)
    except KeyboardInterrupt as exc:
        _report_interrupted(item, exc)
        raise


def _report_interrupted(item: pytest.Item, exc: KeyboardInterrupt) -> None:
    state = state_of(item.config)
    how = exc.signal_name if isinstance(exc, RunInterrupted) else "SIGINT"
    where = f" at stage {state.session.stage}" if state.session is not None else ""
    reason = f"{verdicts.INTERRUPTED} by {how} while this gate ran{where}"
    rep = pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed", reason, "setup",
                            user_properties=item.user_properties)
    marker = item.get_closest_marker("requirement")
    if marker is not None:
        state.verdicts[item.nodeid] = verdicts.GateVerdict(item.nodeid, tuple(map(str, marker.args)),
                                                           verdicts.INTERRUPTED, reason)
    report.attach_console(item, rep, state.session)
    item.ihook.pytest_runtest_logreport(report=rep)
    # JUnit writes a testcase's properties and closes it on the teardown report.
    item.ihook.pytest_runtest_logreport(report=pytest.TestReport(
        item.nodeid, item.location, rep.keywords, "passed", None, "teardown", user_properties=item.user_properties))
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
