"""The virtual board's SD card and eMMC: image files inspected at each power-on.

Inspecting at power-on (not at start-up) matters: a flasher writes the file while the board is
off, and the next boot must see what was written, exactly like a card moved by an SD mux.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.image.layout import ImageFacts, inspect_image

BLANK_EMMC_SECTORS = 64 * 2**30 // 512  # a blank 64 GB eMMC, as on the NanoPi M6


@dataclass
class VirtualMmc:
    index: int
    kind: str  # "sd" or "emmc"
    controller: str
    image: Path | None = None
    present: bool = True
    facts: ImageFacts | None = field(default=None, init=False)

    def insert(self) -> str | None:
        """Re-read the image; returns the problem (for the board's own log) when it is unusable."""
        self.facts = None
        if not self.present or self.image is None:
            return None
        facts = inspect_image(self.image)
        if facts.problem is not None:
            return f"{self.kind} image {self.image}: {facts.problem}; behaving like a blank card"
        self.facts = facts
        return None

    @property
    def has_card(self) -> bool:
        """An SD slot needs a card; a soldered eMMC answers even when blank."""
        return self.present and (self.image is not None or self.kind == "emmc")

    @property
    def has_loader(self) -> bool:
        return self.facts is not None and self.facts.rockchip_loader

    @property
    def bootable(self) -> bool:
        return self.facts is not None and self.facts.bootable

    @property
    def label(self) -> str:
        return "SD" if self.kind == "sd" else "eMMC"

    @property
    def sectors(self) -> int:
        if self.facts is not None:
            return self.facts.size_bytes // 512
        if self.image is not None and Path(self.image).exists():
            return Path(self.image).stat().st_size // 512
        return BLANK_EMMC_SECTORS if self.kind == "emmc" else 0
