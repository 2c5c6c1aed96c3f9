"""Facts read from cleaned console text, shared by live gates and offline log analysis.

A gate passes only on a fact that was seen: every parser returns None (or an empty list) when
its lines are absent, never a guess. Patterns follow the captures described in the shared domain
notes (console-markers.md); the ones marked unverified there are kept loose here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_M = re.MULTILINE

DDR_BLOB = re.compile(r"^DDR (?:Version )?(\S+) ", _M)
DDR_TYPE_CLOCK = re.compile(r"^(LPDDR5|LPDDR4X?|DDR4), (\d+)MHz$", _M)
DDR_CHANNEL = re.compile(
    r"^channel\[(\d)\] BW=\d+ Col=\d+ Bk=\d+ CS0 Row=\d+(?: CS1 Row=\d+)? CS=\d Die BW=\d+ Size=(\d+)MB$", _M)
SPL_BANNER = re.compile(r"^U-Boot SPL (\d{4}\.\d{2}\S*)", _M)
UBOOT_BANNER = re.compile(r"^U-Boot (?!SPL|TPL)(\S+) \((.*)\)$", _M)
UBOOT_MODEL = re.compile(r"^Model: (.+)$", _M)
UBOOT_DRAM = re.compile(r"^DRAM:\s+([\d.]+) GiB", _M)


@dataclass
class DdrFacts:
    blob_version: str | None = None
    type: str | None = None
    mhz: int | None = None
    channels: dict[int, int] = field(default_factory=dict)
    line: str | None = None

    @property
    def size_mb(self) -> int | None:
        return sum(self.channels.values()) if self.channels else None


def ddr_facts(text: str) -> DdrFacts:
    """DDR blob facts from one boot. The type/clock line printed last is the final clock."""
    facts = DdrFacts()
    if m := DDR_BLOB.search(text):
        facts.blob_version = m.group(1)
    clocks = list(DDR_TYPE_CLOCK.finditer(text))
    if clocks:
        last = clocks[-1]
        facts.type, facts.mhz, facts.line = last.group(1), int(last.group(2)), last.group(0)
    for m in DDR_CHANNEL.finditer(text):
        facts.channels[int(m.group(1))] = int(m.group(2))
    return facts


@dataclass
class UBootFacts:
    spl_version: str | None = None
    version: str | None = None
    build_date: str | None = None
    model: str | None = None
    dram_gib: float | None = None


def uboot_facts(text: str) -> UBootFacts:
    facts = UBootFacts()
    if m := SPL_BANNER.search(text):
        facts.spl_version = m.group(1)
    if m := UBOOT_BANNER.search(text):
        facts.version, facts.build_date = m.group(1), m.group(2)
    if m := UBOOT_MODEL.search(text):
        facts.model = m.group(1).strip()
    if m := UBOOT_DRAM.search(text):
        facts.dram_gib = float(m.group(1))
    return facts


KERNEL_ENTRY = re.compile(r"Booting Linux on physical CPU 0x[0-9a-f]+", _M)
KERNEL_VERSION = re.compile(r"Linux version (\S+)", _M)
KERNEL_MODEL = re.compile(r"Machine model: (.+)$", _M)
KERNEL_CMDLINE = re.compile(r"Kernel command line: (.*)$", _M)
ETHERNET_LINK = re.compile(r"(\S+\.ethernet) (\S+): Link is Up - (\d+(?:M|G)bps)/(Full|Half)", _M)
MMC_CARD = re.compile(r"(mmc\d+): new .*?(MMC|SDHC|SDXC|SD) card at address ([0-9a-f]{4})", _M)
MMC_BLOCK = re.compile(r"(mmcblk\d+): (mmc\d+):[0-9a-f]{4} \S+ ([\d.]+ [GM]iB)", _M)
USB_DEVICE = re.compile(r"usb (\S+): New USB device found, idVendor=([0-9a-f]{4}), idProduct=([0-9a-f]{4})", _M)
NVME_NAMESPACE = re.compile(r"(nvme\d+n\d+): p\d", _M)
TALOS_VERSION = re.compile(r"\[talos\] \[initramfs\] booting Talos (v\S+)", _M)
TALOS_MAINTENANCE = re.compile(r"\[talos\] entering maintenance service", _M)
SIDEROLINK_UP = re.compile(r"\[talos\] siderolink connection configured .*\"node_address\": \"([^\"]+)\"", _M)
SIDEROLINK_FAILED = re.compile(
    r"\[talos\] controller failed .*\"controller\": \"siderolink\.ManagerController\".*\"error\": \"([^\"]*)\"", _M)


def console_args(cmdline: str) -> list[tuple[str, int | None]]:
    """(device, baud) of each `console=` argument; `ttyS2,1500000n8` and `ttyS2,1500000` are the same."""
    found = []
    for arg in cmdline.split():
        if arg.startswith("console="):
            device, _, options = arg.removeprefix("console=").partition(",")
            baud = re.match(r"\d+", options)
            found.append((device, int(baud.group(0)) if baud else None))
    return found


@dataclass
class KernelFacts:
    entered: bool = False
    version: str | None = None
    model: str | None = None
    cmdline: str | None = None
    ethernet: list[dict[str, str]] = field(default_factory=list)
    mmc: list[dict[str, str]] = field(default_factory=list)
    usb: list[dict[str, str]] = field(default_factory=list)
    nvme: list[str] = field(default_factory=list)


def kernel_facts(text: str) -> KernelFacts:
    facts = KernelFacts(entered=KERNEL_ENTRY.search(text) is not None)
    if m := KERNEL_VERSION.search(text):
        facts.version = m.group(1)
    if m := KERNEL_MODEL.search(text):
        facts.model = m.group(1).strip()
    if m := KERNEL_CMDLINE.search(text):
        facts.cmdline = m.group(1).strip()
    facts.ethernet = [{"device": m.group(1), "interface": m.group(2), "link": "up", "speed": m.group(3),
                       "duplex": m.group(4).lower()} for m in ETHERNET_LINK.finditer(text)]
    cards = {m.group(1): m.group(2) for m in MMC_CARD.finditer(text)}
    facts.mmc = [{"device": m.group(1), "host": m.group(2), "size": m.group(3), "card": cards.get(m.group(2), "")}
                 for m in MMC_BLOCK.finditer(text)]
    facts.usb = [{"bus_path": m.group(1), "id": f"{m.group(2)}:{m.group(3)}"} for m in USB_DEVICE.finditer(text)]
    facts.nvme = sorted({m.group(1) for m in NVME_NAMESPACE.finditer(text)})
    return facts


@dataclass
class TalosFacts:
    version: str | None = None
    maintenance: bool = False
    siderolink_address: str | None = None
    siderolink_error: str | None = None


def talos_facts(text: str) -> TalosFacts:
    facts = TalosFacts(maintenance=TALOS_MAINTENANCE.search(text) is not None)
    if m := TALOS_VERSION.search(text):
        facts.version = m.group(1)
    if m := SIDEROLINK_UP.search(text):
        facts.siderolink_address = m.group(1)
    if m := SIDEROLINK_FAILED.search(text):
        facts.siderolink_error = m.group(1)
    return facts
