"""`hil`: the harness's commands outside pytest.

`hil boards` lists profiles, `hil check FILE...` validates profiles and bench files the way a run
would, `hil sim --board NAME` runs a virtual board on a pty a person can open with picocom.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from harness.config.bench import Bench
from harness.config.profile import BoardProfile, boards_dir, known_boards, load_profile
from harness.config.yamlfile import load_model
from harness.errors import HarnessError


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
    from harness.sim.transcript import load_transcript

    board = VirtualBoard(load_transcript(args.board), ram_mb=args.ram_mb, time_scale=args.time_scale)
    print(f"virtual {args.board} console: {board.pty_path}", flush=True)
    print("open it with: picocom -b 1500000 " + board.pty_path, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    board.power(True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    board.close()
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
    sim.add_argument("--board", required=True)
    sim.add_argument("--ram-mb", type=int, default=8192)
    sim.add_argument("--time-scale", type=float, default=1.0, help="1.0 is real timing; smaller is faster")
    sim.set_defaults(run=_sim)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except HarnessError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
