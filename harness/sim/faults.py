"""The virtual board's fault catalogue: what can be made to go wrong, by name.

Names are the contract with benches and tests (`--sim-fault`, a bench's `sim.faults`); what a
fault prints is data in each board's transcript (`faults:`), so a board without, say, a DDR
blob simply has no `ddr-fail` entry and the fault is rejected for it with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.errors import ConfigError

HANG_STAGES = ("ddr", "spl", "u-boot", "kernel", "talos")

FAULTS: dict[str, str] = {
    "ddr-fail": "DDR training fails; the board stops in the DDR blob",
    "ddr-wrong-clock": "DDR comes up at the wrong clock (2112 MHz on a 2400 MHz board)",
    **{f"hang:{stage}": f"output stops in the middle of stage {stage}" for stage in HANG_STAGES},
    "kernel-panic": "the kernel panics before init",
    "no-eth-link": "the Ethernet PHY never reports link up",
    "no-emmc": "the eMMC does not answer (missing from U-Boot and the kernel)",
    "no-usb": "no USB device enumerates",
    "serial-noise": "random noise bytes between console lines (bad cable, ground loop)",
    "uart-reenumerate": "the USB UART vanishes while the board is off and comes back on another pty",
    "talos-no-maintenance": "Talos boots but never reaches maintenance mode",
    "siderolink-fail": "SideroLink fails to connect (needs SideroLink kernel arguments)",
    "kernel-console-other-uart": "kernel console on another UART: silent after 'EFI stub: Exiting boot services'",
}

# Faults that switch a hardware feature off: the transcript's lines marked `when: <feature>` vanish.
FEATURE_FAULTS = {"no-eth-link": "eth", "no-emmc": "emmc", "no-usb": "usb"}
# Faults done by code on the serial link itself, the same on every board. With `hang:<stage>` and
# FEATURE_FAULTS they are the generic ones; every other fault prints what the board's transcript says.
LINK_FAULTS = ("serial-noise", "uart-reenumerate")


def validate_faults(names: list[str] | tuple[str, ...], where: str = "--sim-fault") -> tuple[str, ...]:
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown virtual board fault {', '.join(map(repr, unknown))} ({where}). "
                          f"Known faults: {', '.join(FAULTS)}")
    return tuple(dict.fromkeys(names))


def describe_faults(boards: Mapping[str, Sequence[str]] | None = None) -> str:
    """The catalogue for a person; with `boards` (fault -> board names), which boards each fault applies to.

    Saying where a fault applies up front spares a run that would be refused (or, worse, that would
    inject nothing and pass) on a board whose transcript has no such failure.
    """
    width = max(map(len, FAULTS))
    lines = []
    for name, text in FAULTS.items():
        line = f"{name:<{width}}  {text}"
        if boards is not None:
            line += f" [boards: {', '.join(boards.get(name, ())) or 'none'}]"
        lines.append(line)
    return "\n".join(lines)
