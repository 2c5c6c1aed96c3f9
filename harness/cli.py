"""`hil`: the harness's commands outside pytest.

`hil boards` lists profiles, `hil check FILE...` validates profiles and bench files the way a run
would, `hil sim --board NAME` runs a virtual board on a pty a person can open with picocom.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from harness.config.bench import Bench
from harness.config.profile import BoardProfile, boards_dir, known_boards, load_profile
from harness.config.yamlfile import load_model
from harness.errors import ConfigError, HarnessError


def _boards(args: argparse.Namespace) -> int:
    directory = boards_dir(Path.cwd())
    for name in known_boards(directory):
        profile = load_profile(name, directory)
        print(f"{name:14} {profile.description}")
    return 0


def _check(args: argparse.Namespace) -> int:
    for path in map(Path, args.files):
        model: type[BoardProfile | Bench] = Bench if args.bench or path.parent.name == "benches" else BoardProfile
        load_model(path, model, what="bench file" if model is Bench else "board profile")
        print(f"{path}: ok")
    return 0


def _sim(args: argparse.Namespace) -> int:
    from harness.sim.board import VirtualBoard
    from harness.sim.faults import describe_faults, validate_faults
    from harness.sim.relay import LcusRelayDouble
    from harness.sim.transcript import load_transcript

    if args.list_faults:
        print(describe_faults())
        return 0
    if not args.board:
        raise ConfigError("hil sim needs --board NAME (see `hil boards`)")
    profile = load_profile(args.board, boards_dir(Path.cwd()))
    validate_faults(args.fault, where="hil sim --fault")
    emmc = args.emmc_image
    if args.image is None and emmc is None:
        from harness.image.synthetic import make_talos_like_image
        emmc = str(make_talos_like_image(Path(tempfile.mkdtemp(prefix="hil-sim-")) / "talos.img"))
    board = VirtualBoard(profile, load_transcript(profile.name), ram_mb=args.ram_mb, time_scale=args.time_scale,
                         faults=args.fault, sd_image=args.image, emmc_image=emmc,
                         log=lambda message: print(f"[board] {message}", flush=True))
    relay = LcusRelayDouble(channels=1, on_change=lambda _channel, on: board.power(on))
    print(f"virtual {profile.name} console: {board.pty_path}", flush=True)
    print(f"relay (LCUS, channel 1): {relay.pty_path}", flush=True)
    print(f"open the console with: picocom -b {profile.console.firmware.baud} {board.pty_path}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not args.off:
        board.power(True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    relay.close()
    board.close()
    return 0


def _log_analyze(args: argparse.Namespace) -> int:
    from harness.analysis import analyze, read_capture, summary

    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"no console capture at {path}")
    profile = load_profile(args.board, boards_dir(Path.cwd())) if args.board else None
    result = analyze(read_capture(path), profile, ram_mb=args.ram_mb)
    print(json.dumps(result, indent=2) if args.json else summary(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hil", description="Talos board bring-up harness")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("boards", help="list the board profiles").set_defaults(run=_boards)
    check = commands.add_parser("check", help="validate board profiles or bench files")
    check.add_argument("files", nargs="+")
    check.add_argument("--bench", action="store_true", help="the files are bench files")
    check.set_defaults(run=_check)
    sim = commands.add_parser("sim", help="run a virtual board on a pty until stopped")
    sim.add_argument("--board", help="board profile name (boards/NAME.yaml)")
    sim.add_argument("--image", help="SD card image the board boots (default: a synthetic Talos image on eMMC)")
    sim.add_argument("--emmc-image", help="eMMC image")
    sim.add_argument("--fault", action="append", default=[], help="inject a fault (repeatable)")
    sim.add_argument("--list-faults", action="store_true", help="print the faults that can be injected")
    sim.add_argument("--ram-mb", type=int, default=8192)
    sim.add_argument("--time-scale", type=float, default=1.0, help="1.0 is real timing; smaller is faster")
    sim.add_argument("--off", action="store_true", help="start powered off; switch it with the relay pty")
    sim.set_defaults(run=_sim)
    log = commands.add_parser("log", help="work with console captures").add_subparsers(dest="log", required=True)
    analyze = log.add_parser("analyze", help="stages and facts in a console capture (raw or console.log)")
    analyze.add_argument("file")
    analyze.add_argument("--board", help="judge the gates a passive log can decide, against this profile")
    analyze.add_argument("--ram-mb", type=int, help="this unit's RAM, for BOOT-02's size check")
    analyze.add_argument("--json", action="store_true", help="one JSON object")
    analyze.set_defaults(run=_log_analyze)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except HarnessError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
