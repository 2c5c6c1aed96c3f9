"""Judging a gate from console text: one function per passive gate, used live and offline.

The live gates wait until their evidence is in the capture and then call these; `hil log analyze`
calls them on a saved capture. Same text in, same verdict out: a log written by a run reproduces
what that run saw. A judgment is pass, fail (with what was seen instead) or not-seen. Which judge
decides which gate is declared in harness/gates/registry.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.command import CommandResult
from harness.config.profile import BoardProfile
from harness.parsers import console_args, ddr_facts, kernel_facts, talos_facts

PASS, FAIL, NOT_SEEN = "pass", "fail", "not-seen"
LINUX_ROOT_HUB_VENDOR = "1d6b"  # root hubs are virtual; a real enumeration has another vendor


@dataclass(frozen=True)
class Judgment:
    verdict: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


def boot01(text: str, profile: BoardProfile, **_: object) -> Judgment:
    if profile.uboot.prompt in text:
        return Judgment(PASS, f"U-Boot prompt {profile.uboot.prompt!r} seen")
    return Judgment(NOT_SEEN, f"no U-Boot prompt {profile.uboot.prompt!r} (autoboot was not interrupted?)")


def boot02(text: str, profile: BoardProfile, ram_mb: int | None = None, **_: object) -> Judgment:
    expected = profile.ddr
    if expected is None:
        return Judgment(NOT_SEEN, f"{profile.name} prints no DDR init")
    ddr = ddr_facts(text)
    if ddr.type is None:
        return Judgment(NOT_SEEN, "no DDR type/clock line (e.g. 'LPDDR5, 2400MHz')")
    if (ddr.type, ddr.mhz) != (expected.type, expected.mhz):
        return Judgment(FAIL, f"DDR init reports {ddr.line!r}; the profile expects {expected.type}, {expected.mhz}MHz")
    if ram_mb is not None and ddr.size_mb != ram_mb:
        return Judgment(FAIL, f"DDR channels sum to {ddr.size_mb} MB ({ddr.channels}); this unit has {ram_mb} MB")
    size = f", {ddr.size_mb} MB" if ddr.size_mb else ""
    return Judgment(PASS, f"{ddr.type}, {ddr.mhz}MHz{size}")


def boot04(text: str, profile: BoardProfile, **_: object) -> Judgment:
    kernel = kernel_facts(text)
    if not kernel.entered or kernel.cmdline is None:
        return Judgment(NOT_SEEN, "no 'Booting Linux' and kernel command line")
    if not re.search(profile.kernel.userspace, text, re.MULTILINE):
        return Judgment(NOT_SEEN, f"Linux {kernel.version} started but never reached userspace "
                                  f"(/{profile.kernel.userspace}/ not seen)")
    wanted = (profile.console.kernel.device, profile.console.kernel.baud)
    if wanted not in console_args(kernel.cmdline):
        return Judgment(FAIL, f"Linux {kernel.version} runs, but its command line lacks {profile.console.kernel_arg} "
                              f"(the console goes quiet or garbled after the kernel starts): {kernel.cmdline}")
    return Judgment(PASS, f"Linux {kernel.version} with {profile.console.kernel_arg}")


def kern01(text: str, profile: BoardProfile, **_: object) -> Judgment:
    if profile.ethernet is None:
        return Judgment(NOT_SEEN, f"{profile.name} names no Ethernet device")
    links = [e for e in kernel_facts(text).ethernet if e["device"] == profile.ethernet.device]
    if not links:
        return Judgment(NOT_SEEN, f"no link up on {profile.ethernet.device}")
    return Judgment(PASS, f"{profile.ethernet.device} link up at {links[-1]['speed']}/{links[-1]['duplex']}")


def kern02(text: str, profile: BoardProfile, **_: object) -> Judgment:
    host = profile.kernel.mmc_hosts.get("emmc")
    if host is None:
        return Judgment(NOT_SEEN, f"{profile.name}: kernel.mmc_hosts names no emmc host")
    devices = [m for m in kernel_facts(text).mmc if m["host"] == host]
    if not devices:
        return Judgment(NOT_SEEN, f"no mmcblk device on {host} (eMMC)")
    return Judgment(PASS, f"{devices[0]['device']} on {host}, {devices[0]['size']}")


def kern03(text: str, profile: BoardProfile, **_: object) -> Judgment:
    devices = [d for d in kernel_facts(text).usb if not d["id"].startswith(LINUX_ROOT_HUB_VENDOR)]
    if not devices:
        return Judgment(NOT_SEEN, "no USB device (other than root hubs) enumerated")
    return Judgment(PASS, ", ".join(f"{d['id']} at {d['bus_path']}" for d in devices))


def kern04(text: str, profile: BoardProfile, **_: object) -> Judgment:
    model = kernel_facts(text).model
    if model is None:
        return Judgment(NOT_SEEN, "no 'Machine model' line")
    if model != profile.kernel.model:
        return Judgment(FAIL, f"the device tree says {model!r}; the profile expects {profile.kernel.model!r}")
    return Judgment(PASS, model)


def ovrl04_console(text: str, profile: BoardProfile, **_: object) -> Judgment:
    talos = talos_facts(text)
    if not talos.maintenance:
        return Judgment(NOT_SEEN, "no 'entering maintenance service'")
    return Judgment(PASS, f"Talos {talos.version} in maintenance mode (console only; the API probe is live)")


def shell_check(result: CommandResult, expect: str) -> Judgment:
    """A shell command's evidence: it must exit 0 and print what the profile says it prints."""
    if not result.ok:
        return Judgment(FAIL, f"'{result.command}' exited {result.status}: {result.output}")
    if not re.search(expect, result.output, re.MULTILINE):
        return Judgment(FAIL, f"'{result.command}' does not show /{expect}/: {result.output}")
    return Judgment(PASS, f"'{result.command}': {result.output}")
