"""The virtual board's fault catalogue: what can be made to go wrong, by name.

Names are the contract with benches and tests (`--sim-fault`, a bench's `sim.faults`); what a
fault prints is data in each board's transcript (`faults:`), so a board without, say, a DDR
blob simply has no `ddr-fail` entry and the fault is rejected for it with a clear message.
"""

from __future__ import annotations

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


def validate_faults(names: list[str] | tuple[str, ...], where: str = "--sim-fault") -> tuple[str, ...]:
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown virtual board fault {', '.join(map(repr, unknown))} ({where}). "
                          f"Known faults: {', '.join(FAULTS)}")
    return tuple(dict.fromkeys(names))


def describe_faults() -> str:
    width = max(map(len, FAULTS))
    return "\n".join(f"{name:<{width}}  {text}" for name, text in FAULTS.items())
