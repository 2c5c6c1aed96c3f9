"""Every roadmap requirement and the gate that proves it, declared once.

One line per requirement: id, phase, criterion, and for a gate that reads the console the parser
and judge that decide it from console text (`judge`), what a live gate waits for before judging
(`evidence`), and the later stage that evidence needs (`needs_stage`). The requirement matrix, the
live gates, `hil log analyze` and the fault-verdict tests all read this table; a gate's test
function names its id once, with `@gate("BOOT-01")`, which also marks its phase.

Adding a kernel-log gate: a parser (harness/parsers.py), a judge (harness/judges.py), a line here,
and the test function in harness/gates/.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from harness import judges
from harness.config.profile import BoardProfile

# Phase markers, in roadmap order; `lifecycle` (upgrades, system extensions) is ours.
PHASES: dict[str, str] = {
    "environment": "roadmap phase 1: build toolchain, UART, flashing",
    "bootloader": "roadmap phase 2: DDR, U-Boot, storage, recovery",
    "kernel": "roadmap phase 3: kernel console, Ethernet, eMMC, USB, device tree",
    "overlay": "roadmap phase 4: Talos overlay, installer, maintenance mode",
    "cluster": "roadmap phase 5: eMMC boot, network, Omni, Kubernetes",
    "hardening": "roadmap phase 6: NVMe, cpufreq, thermal, watchdog",
    "lifecycle": "ours: in-place upgrades and system extensions",
}
NEVER = "(?!)"  # the profile names nothing to wait for: the wait times out and says what is missing

Evidence = Callable[[BoardProfile], tuple[str, str]]


@dataclass(frozen=True)
class Requirement:
    id: str
    phase: str
    criterion: str
    judge: Callable[..., judges.Judgment] | None = None  # decides the gate from console text, live and offline
    evidence: Evidence | None = None  # (pattern, what) a live gate waits for before judging
    needs_stage: Callable[[BoardProfile], str | None] | None = None  # the later stage that evidence needs

    def wait_for(self, profile: BoardProfile) -> tuple[re.Pattern[str], str]:
        if self.evidence is None:
            raise KeyError(f"{self.id} has no console evidence to wait for")
        pattern, what = self.evidence(profile)
        return re.compile(pattern, re.MULTILINE), what


def _ethernet(profile: BoardProfile) -> tuple[str, str]:
    device = profile.ethernet.device if profile.ethernet else None
    return (rf"{re.escape(device)} \S+: Link is Up" if device else NEVER), f"link up on {device}"


def _emmc(profile: BoardProfile) -> tuple[str, str]:
    host = profile.kernel.mmc_hosts.get("emmc")
    return (rf"mmcblk\d+: {re.escape(host)}:" if host else NEVER), f"an mmcblk device on {host} (eMMC)"


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("ENV-01", "environment", "the overlay repository builds with the bldr/kres toolchain"),
    Requirement("ENV-02", "environment", "the UART console shows output at the board's baud after power-on"),
    Requirement("ENV-03", "environment", "docker buildx produces arm64 artifacts"),
    Requirement("ENV-04", "environment", "built artifacts can be flashed to the microSD"),
    Requirement("BOOT-01", "bootloader", "the U-Boot prompt appears on the UART after power-on", judges.boot01),
    Requirement("BOOT-02", "bootloader", "DDR init passes (LPDDR5 initialised correctly)", judges.boot02),
    Requirement("BOOT-03", "bootloader", "U-Boot can read files from the microSD"),
    Requirement("BOOT-REC", "bootloader", "the recovery procedure (MaskROM) is documented and tested"),
    Requirement("BOOT-04", "kernel", "the Linux kernel boots to console", judges.boot04,
                lambda p: (p.kernel.userspace, "the kernel handing over to userspace")),
    Requirement("KERN-01", "kernel", "Gigabit Ethernet appears", judges.kern01, _ethernet,
                lambda p: p.ethernet.link_up_by if p.ethernet else None),
    Requirement("KERN-02", "kernel", "eMMC is detected and accessible", judges.kern02, _emmc),
    Requirement("KERN-03", "kernel", "USB host ports enumerate connected devices", judges.kern03,
                lambda _: (rf"New USB device found, idVendor=(?!{judges.LINUX_ROOT_HUB_VENDOR})",
                           "a USB device (not a root hub) enumerating")),
    Requirement("KERN-04", "kernel", "the device tree identifies the board", judges.kern04,
                lambda _: (r"Machine model: ", "the 'Machine model' line")),
    Requirement("OVRL-01", "overlay", "the installer binary implements the overlay installer interface"),
    Requirement("OVRL-02", "overlay", "the profile YAML passes the imager's validation"),
    Requirement("OVRL-03", "overlay", "the overlay container image builds and is pushed to a registry"),
    Requirement("OVRL-04", "overlay", "the generated image boots to Talos maintenance mode", judges.ovrl04_console,
                lambda _: (r"\[talos\] entering maintenance service", "Talos entering maintenance mode")),
    Requirement("CLST-01", "cluster", "the board boots Talos from eMMC with no manual intervention"),
    Requirement("CLST-02", "cluster", "network connectivity (reaches beyond the bench)"),
    Requirement("CLST-03", "cluster", "the machine appears in Omni with the right name"),
    Requirement("CLST-04", "cluster", "the node is Ready in Kubernetes"),
    Requirement("CLST-05", "cluster", "a test pod scheduled on the node runs"),
    Requirement("KERN-05", "hardening", "NVMe detected and usable"),
    Requirement("KERN-06", "hardening", "CPU frequency scales with load"),
    Requirement("KERN-07", "hardening", "thermal sensors report temperatures"),
    Requirement("KERN-08", "hardening", "the hardware watchdog resets the board on a hang"),
)
BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}

Test = TypeVar("Test", bound=Callable[..., object])
# requirement id -> the test functions that prove it ("module.function"), filled in as gate modules load.
IMPLEMENTED: dict[str, list[str]] = {}


def gate(requirement: str) -> Callable[[Test], Test]:
    """Declare a test function the gate of `requirement`: its id and phase marker, written once, and
    the gate registered as implemented."""
    if requirement not in BY_ID:
        raise KeyError(f"@gate({requirement!r}): no such requirement in harness/gates/registry.py "
                       f"(known: {', '.join(BY_ID)})")
    phase = BY_ID[requirement].phase

    def mark(test: Test) -> Test:
        name = f"{test.__module__}.{test.__qualname__}"
        if name not in IMPLEMENTED.setdefault(requirement, []):
            IMPLEMENTED[requirement].append(name)
        return getattr(pytest.mark, phase)(pytest.mark.requirement(requirement)(test))

    return mark


def shipped_gates() -> dict[str, list[str]]:
    """Every requirement the shipped gate modules prove, and by which test functions."""
    import harness.gates

    for module in pkgutil.iter_modules(harness.gates.__path__, "harness.gates."):
        if module.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(module.name)
    return {r.id: IMPLEMENTED[r.id] for r in REQUIREMENTS if r.id in IMPLEMENTED}


def judge_all(text: str, profile: BoardProfile, ram_mb: int | None = None) -> dict[str, str]:
    """Each passively judgeable gate id -> pass / fail / not-seen (not applicable ones say so)."""
    return {r.id: "not-applicable" if r.id in profile.not_applicable else r.judge(text, profile, ram_mb=ram_mb).verdict
            for r in REQUIREMENTS if r.judge is not None}
