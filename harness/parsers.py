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
SPL_BANNER = re.compile(r"^U-Boot SPL (\S+)", _M)
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
