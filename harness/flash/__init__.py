"""Flashing: put an image on a board's medium fast, skip only what cannot matter, and prove what was written.

The image pipeline (`image`, `bmap`, `writer`, `progress`) streams `.raw`/`.raw.xz`/`.raw.zst`
images to a target path; choosing and judging the target (SD mux, MaskROM, block device safety)
lives beside it. Drivers layer: nothing here imports the session, the rig or pytest.
"""

from __future__ import annotations

from harness.flash.bmap import Bmap, Range, bmap_beside, create_bmap, parse_bmap
from harness.flash.image import ImageCorrupt, ImageSource, open_image
from harness.flash.progress import Progress
from harness.flash.writer import FlashSummary, Target, VerifyMismatch, open_target, write_image

__all__ = [
    "Bmap",
    "FlashSummary",
    "ImageCorrupt",
    "ImageSource",
    "Progress",
    "Range",
    "Target",
    "VerifyMismatch",
    "bmap_beside",
    "create_bmap",
    "open_image",
    "open_target",
    "parse_bmap",
    "write_image",
]
