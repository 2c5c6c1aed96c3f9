"""Which bench power sections this version can actually switch, decided in one place.

The bench schema accepts every relay kind a bench file may name (so a bench written for a later
version still parses), but only some have a driver here. A run that reaches power-on with a relay
it cannot drive would fail late and look like a board fault; `hil check` and the pytest plugin
ask this module first, so both say the same thing before anything is switched.
"""

from __future__ import annotations

from harness.config.bench import Bench, RelaySpec

# LCUS modules number their relays 1..8 (LCUS-8 is the largest); harness/power/lcus.py checks the
# same range when it sends a frame. Repeated here because config must not import drivers.
LCUS_CHANNELS = range(1, 9)
LCUS_EXAMPLE = "power: {kind: lcus, port: ..., channel: N}"


def power_driver_problem(bench: Bench) -> str | None:
    """Why this bench's board cannot be switched on by this version, or None when it can.

    Virtual benches switch their board themselves, so only hardware benches are judged.
    """
    if bench.kind != "hardware":
        return None
    if bench.power is None:
        return (f"bench '{bench.name}' has no power section: the harness cannot switch the board; "
                f"add {LCUS_EXAMPLE}")
    return _relay_problem(bench.name, bench.power)


def _relay_problem(bench_name: str, power: RelaySpec) -> str | None:
    if power.kind != "lcus":
        return (f"bench '{bench_name}': power kind '{power.kind}' has no driver in this version "
                f"(LCUS relays have one: {LCUS_EXAMPLE})")
    if not power.port:
        return (f"bench '{bench_name}': power kind 'lcus' needs a port, the relay module's serial device "
                f"(e.g. a /dev/serial/by-id/... name): {LCUS_EXAMPLE}")
    if power.channel not in LCUS_CHANNELS:
        return (f"bench '{bench_name}': power.channel {power.channel} does not exist on an LCUS module; "
                "its relays are numbered 1..8, as printed on the board")
    return None
