"""Helpers for the virtual-board tests: real profiles with short stage timeouts, and sim benches."""

from __future__ import annotations

from typing import Any

from harness.config.bench import Bench, SimSpec
from harness.config.profile import BoardProfile, boards_dir, load_profile

# Short enough that a hang is reported in a couple of seconds, long enough (about 10x) for a
# healthy virtual boot at time_scale 0.05 on a loaded machine.
FAST_TIMEOUTS = {"ddr": 1.5, "spl": 1.5, "u-boot": 2.0, "kernel": 2.5, "talos-maintenance": 2.5}


def fast_profile(name: str) -> BoardProfile:
    """The shipped profile, unchanged except for its stage timeouts."""
    profile = load_profile(name, boards_dir())
    timeouts = {stage: FAST_TIMEOUTS.get(stage, 2.5) for stage in profile.timeouts}
    return profile.model_copy(update={"timeouts": timeouts})


def sim_bench(**sim: Any) -> Bench:
    """A virtual bench with an 8 GB unit; keyword arguments go to SimSpec (faults, images, ...)."""
    return Bench(name="sim", kind="sim", ram_mb=8192, sim=SimSpec(**sim))
