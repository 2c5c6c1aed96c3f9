"""The user's mistakes, found before the first power-on: one message each, a usage error (exit 4).

A missing image or a bench wired for another board is not the bench's fault and not the board's:
powering on eight times to report "check the wiring" eight times would blame both wrongly. Every
check here reads only the command line and the files; nothing is switched or opened.
"""

from __future__ import annotations

from pathlib import Path

from harness.config.bench import Bench
from harness.config.power_support import power_driver_problem
from harness.config.profile import BoardProfile
from harness.errors import ConfigError
from harness.rig import QEMU_SOC
from harness.sim.applicability import check_faults_apply


def check_image(image: str, *, option: str) -> Path:
    """An image the bench can use: an existing, non-empty regular file."""
    path = Path(image).expanduser()
    if not path.exists():
        raise ConfigError(f"{option} {image}: no such file; pass the disk image to boot (e.g. metal-arm64.raw)")
    if path.is_dir():
        raise ConfigError(f"{option} {image} is a directory; pass the disk image file inside it")
    if not path.is_file():
        raise ConfigError(f"{option} {image} is not a regular file; pass a disk image file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{option} {image} is empty (0 bytes); an interrupted download or build? Pass a disk image")
    return path.resolve()


def check_run(profile: BoardProfile, bench: Bench, *, image: str | None) -> None:
    """Raise ConfigError for the first thing in the command line or the files that cannot work."""
    if bench.board is not None and bench.board != profile.name:
        raise ConfigError(f"bench '{bench.name}' is wired for board '{bench.board}', not '{profile.name}': "
                          f"pass --board {bench.board}, or the bench of the {profile.name}")
    if bench.sim is not None:
        check_faults_apply(profile.name, bench.sim.faults, transcript=bench.sim.transcript)
    if (bench.kind == "qemu") != (profile.soc == QEMU_SOC):
        raise ConfigError(f"--bench qemu runs the QEMU board only (--board qemu-arm64); {profile.name} cannot run "
                          f"on bench '{bench.name}'" if bench.kind == "qemu" else
                          f"{profile.name} is the QEMU board: run it with --bench qemu, not '{bench.name}'")
    if bench.kind == "hardware" and (problem := power_driver_problem(bench)):
        raise ConfigError(problem)
    if image is not None and bench.kind == "qemu":
        raise ConfigError("--image is not used by the QEMU board (it boots its own Debian U-Boot and Linux); "
                          "drop --image")
