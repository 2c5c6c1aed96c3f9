"""`hil`: the harness's commands outside pytest.

`hil boards` lists profiles, `hil check FILE...` validates profiles and bench files the way a run
would, `hil sim --board NAME` runs a virtual board on a pty a person can open with picocom, and
`hil log analyze FILE` reads a console capture.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from harness.cli_console import add_console_command
from harness.cli_doctor import add_doctor_command
from harness.cli_power import add_power_command
from harness.config.bench import Bench
from harness.config.power_support import power_driver_problem
from harness.config.profile import BoardProfile, board_dirs, known_boards, load_profile, profile_path
from harness.config.yamlfile import expected_keys, read_yaml, require_mapping, validate
from harness.errors import ConfigError, HarnessError

# Keys only one kind of file has: `hil check` tells a bench from a board profile by them, not by
# the directory the file happens to sit in.
PROFILE_KEYS = frozenset(BoardProfile.model_fields) - frozenset(Bench.model_fields)
BENCH_KEYS = frozenset(Bench.model_fields) - frozenset(BoardProfile.model_fields)
KINDS: dict[str, tuple[type[BoardProfile | Bench], str]] = {
    "profile": (BoardProfile, "board profile"),
    "bench": (Bench, "bench file"),
}


# -- hil boards ----------------------------------------------------------------------------------
def _boards(args: argparse.Namespace) -> int:
    """List every profile and the file it comes from (the project's own `boards/` overrides the shipped
    ones); a broken one is listed as such, so one bad file cannot hide the good ones."""
    directories = board_dirs(Path.cwd(), Path(args.boards_dir) if args.boards_dir else None)
    broken = []
    for name in known_boards(directories):
        path = profile_path(name, directories)
        try:
            profile = load_profile(str(path), directories)
        except ConfigError as exc:
            broken.append(path)
            print(f"{name:14} BROKEN: {_first_problem(str(exc))}")
            continue
        print(f"{name:14} {profile.description}  [{path}]")
    if broken:
        print(f"hil: {len(broken)} broken board profile(s): {', '.join(p.stem for p in broken)}; "
              f"`hil check {broken[0]}` lists every problem", file=sys.stderr)
        return 2
    return 0


def _first_problem(message: str) -> str:
    """The first line of an error; a heading that ends in ':' is joined to the problem under it."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else message


# -- hil check -----------------------------------------------------------------------------------
def _check(args: argparse.Namespace) -> int:
    """Check every file, report each, and fail if any failed: one broken file must not hide the next."""
    failed = 0
    for path in map(Path, args.files):
        try:
            what = _check_file(path, force_bench=args.bench)
        except HarnessError as exc:
            print(f"hil: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"{path}: ok ({what})")
    return 2 if failed else 0


def file_kind(data: Any) -> Literal["profile", "bench"] | None:
    """"profile" or "bench" by the keys only that kind has (the more of them wins); None when it cannot tell."""
    if not isinstance(data, dict):
        return None
    profile, bench = len(PROFILE_KEYS & data.keys()), len(BENCH_KEYS & data.keys())
    if profile == bench:
        return None
    return "profile" if profile > bench else "bench"


def _check_file(path: Path, *, force_bench: bool) -> str:
    root, data = read_yaml(path, what="YAML")
    kind = "bench" if force_bench else file_kind(data)
    if kind is None:
        raise ConfigError(_neither(path, data))
    model, what = KINDS[kind]
    mapping = require_mapping(path, data, what=what, contents=f"a {what} is a YAML mapping with {expected_keys(model)}")
    loaded = validate(path, root, mapping, model, what=what)
    if isinstance(loaded, Bench):
        _check_bench(path, loaded)
    return what


def _neither(path: Path, data: Any) -> str:
    """Why a file is neither a board profile nor a bench, and what each would hold."""
    contents = (f"a board profile is a YAML mapping with {expected_keys(BoardProfile)}; "
                f"a bench file has name and some of {', '.join(sorted(BENCH_KEYS))}")
    if data is None:
        return f"{path}: the file is empty; {contents}"
    if not isinstance(data, dict):
        return f"{path}:1: not a YAML mapping of keys (got {type(data).__name__}); {contents}"
    keys = ", ".join(map(str, data)) or "none"
    return (f"{path}: looks like neither a board profile nor a bench file (keys: {keys}); {contents}; "
            "pass --bench to check it as a bench file")


def _check_bench(path: Path, bench: Bench) -> None:
    """What a run would refuse after the schema: a relay this version cannot drive, faults the board cannot have."""
    problem = power_driver_problem(bench)
    if problem is not None:
        raise ConfigError(f"{path}: {problem}")
    if bench.sim is not None and bench.board is not None:
        from harness.sim.applicability import check_faults_apply

        transcript = bench.sim.transcript
        check_faults_apply(bench.board, bench.sim.faults, path.parent / transcript if transcript else None)


# -- hil sim -------------------------------------------------------------------------------------
def _sim(args: argparse.Namespace) -> int:
    from harness.sim.applicability import check_faults_apply, fault_boards
    from harness.sim.faults import describe_faults

    if args.list_faults:
        print(describe_faults(fault_boards()))
        return 0
    if not args.board:
        raise ConfigError("hil sim needs --board NAME (see `hil boards`)")
    _check_sim_options(args)
    profile = load_profile(args.board, board_dirs(Path.cwd()))
    check_faults_apply(profile.name, args.fault)
    with contextlib.ExitStack() as stack:
        _run_sim(args, profile, stack)
    return 0


def _check_sim_options(args: argparse.Namespace) -> None:
    """Refuse what the virtual board would misbehave on later, with the option's name in the message."""
    if not (math.isfinite(args.time_scale) and args.time_scale > 0):
        raise ConfigError(f"--time-scale must be a number above 0 (1.0 is the real board's timing, 0.05 twenty "
                          f"times faster), got {args.time_scale}")
    if args.ram_mb <= 0:
        raise ConfigError(f"--ram-mb must be a positive number of megabytes (e.g. 8192), got {args.ram_mb}")
    for option, value in (("--image", args.image), ("--emmc-image", args.emmc_image)):
        if value is not None:
            _check_image(option, Path(value))


def _check_image(option: str, path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"{option} {path}: no such file")
    if not path.is_file():
        raise ConfigError(f"{option} {path}: not a regular file; give a disk image file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{option} {path}: the file is empty (0 bytes); a download or a copy that failed?")


def _run_sim(args: argparse.Namespace, profile: BoardProfile, stack: contextlib.ExitStack) -> None:
    """Run the board until a signal or `quit`; everything it made, the scratch image included, goes on exit."""
    from harness.power.lcus import LcusRelay
    from harness.sim.board import VirtualBoard
    from harness.sim.relay import LcusRelayDouble
    from harness.sim.transcript import load_transcript

    stop = _StopFlag()
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # first: a stop during set-up still cleans up
        signal.signal(number, stop.set_from_signal)
    emmc = args.emmc_image
    scratch = None
    if args.image is None and emmc is None:
        from harness.image.synthetic import make_talos_like_image

        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hil-sim-")))
        emmc = str(make_talos_like_image(scratch / "talos.img"))
    board = VirtualBoard(profile, load_transcript(profile.name), ram_mb=args.ram_mb, time_scale=args.time_scale,
                         faults=args.fault, sd_image=args.image, emmc_image=emmc,
                         log=lambda message: print(f"[board] {message}", flush=True))
    stack.callback(board.close)
    relay = stack.enter_context(LcusRelayDouble(channels=1, on_change=lambda _channel, on: board.power(on)))
    _announce(profile, board.pty_path or "", relay.pty_path, powered=args.on)
    if scratch is not None:
        print(f"eMMC image: {emmc} (a synthetic Talos image, removed when hil sim exits)", flush=True)
    switch = LcusRelay(relay.pty_path, 1).set  # typed commands go through the relay, like a bench's
    if args.on:
        switch(True)
    threading.Thread(target=_obey_commands, args=(switch, stop), name="hil-sim-stdin", daemon=True).start()
    while not stop.is_set():
        time.sleep(0.2)


class _StopFlag:
    """A stop request that a signal handler may set: no lock, unlike threading.Event.

    Python runs signal handlers in the main thread between bytecodes; an Event's set() taken there
    while the main thread itself holds the Event's lock (inside wait()) deadlocks the process.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def set_from_signal(self, _number: int, _frame: object) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def _announce(profile: BoardProfile, console: str, relay: str, *, powered: bool) -> None:
    from harness.power.lcus import BAUD, frame

    def hex_frame(op: int) -> str:
        return " ".join(f"{byte:02X}" for byte in frame(1, op))

    escaped = "".join(f"\\x{byte:02X}" for byte in frame(1, 1))
    for line in (
        f"virtual {profile.name} console: {console}",
        f"relay (LCUS, channel 1): {relay}",
        f"open the console with: picocom -b {profile.console.firmware.baud} {console}",
        f"power is {'on' if powered else 'off'}; switch it through the relay ({BAUD} 8N1): write the bytes "
        f"{hex_frame(1)} (on) or {hex_frame(0)} (off), e.g. printf '{escaped}' > {relay}",
        "or type on, off or quit here (Ctrl-C or SIGTERM also quit)",
    ):
        print(line, flush=True)


def _obey_commands(switch: Callable[[bool], None], stop: _StopFlag) -> None:
    """`on`, `off` and `quit` typed on stdin; at end of input the board keeps running until a signal."""
    for line in _stdin_lines(stop):
        command = line.strip().lower()
        if command == "quit":
            stop.set()
            return
        if command in ("on", "off"):
            try:
                switch(command == "on")
            except HarnessError as exc:
                print(f"hil: {exc}", file=sys.stderr, flush=True)
            else:
                print(f"power {command}", flush=True)
        elif command:
            print(f"hil sim: unknown command {command!r}; type on, off or quit", file=sys.stderr, flush=True)


def _stdin_lines(stop: _StopFlag) -> Iterator[str]:
    """Lines from stdin, read so that running in a terminal's background neither stops nor ends the board."""
    with contextlib.suppress(ValueError, AttributeError):  # not the main thread, or no job control
        signal.signal(signal.SIGTTIN, signal.SIG_IGN)  # a background read then fails with EIO instead of stopping us
    pending = b""
    while not stop.is_set():
        try:
            chunk = os.read(sys.stdin.fileno(), 1024)
        except OSError as exc:
            if exc.errno != errno.EIO:
                return
            time.sleep(0.5)  # in the background of a terminal: try again once brought to the foreground
            continue
        except (ValueError, AttributeError):  # stdin closed or replaced by something without a descriptor
            return
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line.decode(errors="replace") for line in lines)


# -- hil log analyze ----------------------------------------------------------------------------
def _log_analyze(args: argparse.Namespace) -> int:
    from harness.analysis import analyze_capture, summary

    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"no console capture at {path}")
    profile = load_profile(args.board, board_dirs(Path.cwd())) if args.board else None
    results = analyze_capture(path, profile, ram_mb=args.ram_mb, run=args.run)
    if args.json:
        print(json.dumps(results if args.run == "all" else results[0], indent=2))
    else:
        print("\n\n".join(summary(result) for result in results))
    return 0


def _run_number(text: str) -> int | str:
    if text == "all":
        return text
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a run number counted from 1, or 'all'")
    return number


# -- entry point ---------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil", description="Talos board bring-up harness")
    commands = parser.add_subparsers(dest="command", required=True)
    boards = commands.add_parser("boards", help="list the board profiles and where each comes from")
    boards.add_argument("--boards-dir", help="your own board profiles, looked up first")
    boards.set_defaults(handler=_boards)
    add_power_command(commands)
    add_doctor_command(commands)
    add_console_command(commands)
    check = commands.add_parser("check", help="validate board profiles or bench files (told apart by their keys)")
    check.add_argument("files", nargs="+")
    check.add_argument("--bench", action="store_true", help="check the files as bench files, whatever their keys")
    check.set_defaults(handler=_check)
    sim = commands.add_parser("sim", help="run a virtual board on a pty until stopped")
    sim.add_argument("--board", help="board profile name (boards/NAME.yaml)")
    sim.add_argument("--image", help="SD card image the board boots (default: a synthetic Talos image on eMMC)")
    sim.add_argument("--emmc-image", help="eMMC image")
    sim.add_argument("--fault", action="append", default=[], help="inject a fault (repeatable)")
    sim.add_argument("--list-faults", action="store_true", help="print the faults and the boards each applies to")
    sim.add_argument("--ram-mb", type=int, default=8192)
    sim.add_argument("--time-scale", type=float, default=1.0, help="1.0 is real timing; smaller is faster")
    sim.add_argument("--on", action="store_true", help="power on at start (default: off until the relay says on)")
    sim.add_argument("--off", action="store_true", help="start powered off (the default; kept for old scripts)")
    sim.set_defaults(handler=_sim)
    log = commands.add_parser("log", help="work with console captures").add_subparsers(dest="log", required=True)
    analyze = log.add_parser("analyze", help="stages and facts in a console capture (raw or console.log)")
    analyze.add_argument("file")
    analyze.add_argument("--board", help="judge the gates a passive log can decide, against this profile")
    analyze.add_argument("--ram-mb", type=int, help="this unit's RAM, for BOOT-02's size check")
    analyze.add_argument("--run", type=_run_number, default=None, metavar="N|all",
                         help="which run of a file that holds several (default: the last; 'all': each on its own)")
    analyze.add_argument("--json", action="store_true", help="one JSON object (a list of them with --run all)")
    analyze.set_defaults(handler=_log_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "on", False) and getattr(args, "off", False):
        print("hil: --on and --off contradict each other; give one", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except HarnessError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
