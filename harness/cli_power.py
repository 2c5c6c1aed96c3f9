"""`hil power on|off|cycle|status --bench FILE`: the bench's switch for a person at the bench.

The same backends, verbs and read-back check as a run (harness.power.control), so what works here
works in CI. `--maskrom` addresses the MaskROM key instead (`on` presses it, `off` releases it).
Every action prints the state read back, or "unknown" with why; a switch that fails or reads back
wrong is a non-zero exit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.config.bench import load_bench
from harness.config.power_support import power_driver_problem
from harness.errors import ConfigError
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.registry import build_power

ACTIONS = ("on", "off", "cycle", "status")


def add_power_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    power = commands.add_parser("power", help="switch a bench's board: on, off, cycle, status")
    power.add_argument("action", choices=ACTIONS)
    power.add_argument("--bench", required=True, help="bench file (or a name in ./benches)")
    power.add_argument("--maskrom", action="store_true", help="the MaskROM key instead of the power supply")
    power.set_defaults(handler=run_power)


def run_power(args: argparse.Namespace) -> int:
    bench = load_bench(args.bench, Path.cwd() / "benches")
    if bench.kind != "hardware":
        raise ConfigError(f"bench '{bench.name}' is {bench.kind}: `hil power` switches a hardware bench "
                          "(the virtual and QEMU boards are switched by their run)")
    section = bench.maskrom if args.maskrom else bench.power
    if section is None:
        raise ConfigError(f"bench '{bench.name}' has no maskrom: section" if args.maskrom
                          else power_driver_problem(bench) or f"bench '{bench.name}' has no power section")
    control = PowerControl(build_power(section, PowerContext(bench=bench.name, secret=bench.secret)),
                           off_time_s=section.off_time_s)
    action = {"on": control.on, "off": control.off, "cycle": control.cycle, "status": lambda: None}[args.action]
    action()
    what = "MaskROM key" if args.maskrom else "power"
    print(f"{bench.name} {what} ({control.description}): {control.status()}")
    return 0
