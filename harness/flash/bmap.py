"""bmaptool's block map (`.bmap`): which blocks of an image hold data, so the rest need not be written.

Why trust it: the map is made from the image file's own extents (`bmaptool create`, or `create_bmap`
here from SEEK_DATA/SEEK_HOLE), so a range it marks unmapped was never written when the image was
built: its content does not matter to the board. Each mapped range may carry a checksum of its bytes
(`chksum`, of the `ChecksumType`), checked while the image streams through, and the file carries
a checksum of itself (`BmapFileChecksum`, computed with that value replaced by zeros).

The format (bmap-tools, versions 1.x and 2.x): `<bmap version>` holding `ImageSize`, `BlockSize`,
`BlocksCount`, `MappedBlocksCount`, optional `ChecksumType` and `BmapFileChecksum`, and `BlockMap`
with `<Range chksum="...">first-last</Range>` (inclusive block numbers; a lone number is one block).
"""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

COMPRESSED_SUFFIXES = (".xz", ".zst", ".zstd", ".gz", ".bz2")


@dataclass(frozen=True)
class Range:
    """Mapped blocks `first`..`last` inclusive, with the checksum of their bytes if the map has one."""

    first: int
    last: int
    checksum: str | None = None


@dataclass(frozen=True)
class Bmap:
    """A parsed block map; `extents()` gives its mapped ranges in bytes."""

    image_size: int
    block_size: int
    blocks_count: int
    ranges: tuple[Range, ...]
    checksum_type: str | None = None
    source: Path | None = None

    @property
    def mapped_blocks(self) -> int:
        return sum(r.last - r.first + 1 for r in self.ranges)

    def extents(self) -> list[tuple[int, int, Range]]:
        """(start, end) byte offsets of each mapped range, clipped to the image size, in order."""
        return [(r.first * self.block_size, min((r.last + 1) * self.block_size, self.image_size), r)
                for r in self.ranges]

    def to_xml(self) -> str:
        """The map in bmaptool's 2.0 format, with its file checksum: `bmaptool copy` accepts it."""
        lines = [
            '<?xml version="1.0" ?>',
            '<bmap version="2.0">',
            f"    <ImageSize> {self.image_size} </ImageSize>",
            f"    <BlockSize> {self.block_size} </BlockSize>",
            f"    <BlocksCount> {self.blocks_count} </BlocksCount>",
            f"    <MappedBlocksCount> {self.mapped_blocks} </MappedBlocksCount>",
            f"    <ChecksumType> {self.checksum_type or 'sha256'} </ChecksumType>",
            f"    <BmapFileChecksum> {'0' * 64} </BmapFileChecksum>",
            "    <BlockMap>",
            *(f'        <Range chksum="{r.checksum}"> {r.first}-{r.last} </Range>' if r.checksum
              else f"        <Range> {r.first}-{r.last} </Range>" for r in self.ranges),
            "    </BlockMap>",
            "</bmap>",
            "",
        ]
        text = "\n".join(lines)
        return text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest(), 1)


def _number(root: ElementTree.Element, tag: str, path: Path) -> int:
    element = root.find(tag)
    if element is None or element.text is None or not element.text.strip().isdigit():
        raise ConfigError(f"bmap {path}: <{tag}> is missing or not a number")
    return int(element.text.strip())


def parse_bmap(path: Path) -> Bmap:
    """Read and check a `.bmap`: a wrong or damaged map would skip data the board needs, so it is an error."""
    text = path.read_text(encoding="utf-8")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ConfigError(f"bmap {path} is not valid XML: {exc}") from exc
    if root.tag != "bmap":
        raise ConfigError(f"bmap {path}: the root element is <{root.tag}>, not <bmap>")
    image_size = _number(root, "ImageSize", path)
    block_size = _number(root, "BlockSize", path)
    blocks_count = _number(root, "BlocksCount", path)
    if block_size <= 0 or blocks_count != -(-image_size // block_size):
        raise ConfigError(f"bmap {path}: {blocks_count} blocks of {block_size} bytes do not make {image_size} bytes")
    kind = root.find("ChecksumType")
    checksum_type = kind.text.strip() if kind is not None and kind.text else None
    if checksum_type is None and root.get("version", "").startswith("1."):
        checksum_type = "sha1"  # bmap 1.x: sha1 `sha1` attributes, no ChecksumType element
    if checksum_type is not None and checksum_type not in hashlib.algorithms_available:
        raise ConfigError(f"bmap {path}: unknown ChecksumType {checksum_type!r}")
    own = root.find("BmapFileChecksum")
    if own is not None and own.text and checksum_type is not None:
        expected = own.text.strip()
        actual = hashlib.new(checksum_type, text.replace(expected, "0" * len(expected), 1).encode()).hexdigest()
        if actual != expected:
            raise ConfigError(f"bmap {path}: its BmapFileChecksum is {expected}, the file hashes to {actual}: "
                              f"the map was changed or damaged")
    ranges = []
    for element in root.iterfind("BlockMap/Range"):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", element.text or "")
        if match is None:
            raise ConfigError(f"bmap {path}: a <Range> reads {element.text!r}, not 'first-last'")
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        if last < first or last >= blocks_count or (ranges and first <= ranges[-1].last):
            raise ConfigError(f"bmap {path}: range {first}-{last} is out of order or past block {blocks_count - 1}")
        ranges.append(Range(first, last, element.get("chksum") or element.get("sha1")))
    mapped = _number(root, "MappedBlocksCount", path)
    result = Bmap(image_size, block_size, blocks_count, tuple(ranges), checksum_type, path)
    if mapped != result.mapped_blocks:
        raise ConfigError(f"bmap {path}: MappedBlocksCount says {mapped}, its ranges hold {result.mapped_blocks}")
    return result


def bmap_beside(image: Path) -> Path | None:
    """The `.bmap` bmaptool would use for `image`: `x.raw.xz.bmap`, then `x.raw.bmap` (compression suffix dropped)."""
    candidates = [image.with_name(image.name + ".bmap")]
    if image.suffix.lower() in COMPRESSED_SUFFIXES:
        candidates.append(image.with_name(image.stem + ".bmap"))
    return next((c for c in candidates if c.is_file()), None)


def create_bmap(raw: Path, *, block_size: int = 4096, checksum_type: str = "sha256") -> Bmap:
    """The block map of a raw (uncompressed, sparse) image file from its data extents, like `bmaptool create`."""
    size = raw.stat().st_size
    blocks_count = -(-size // block_size)
    ranges: list[Range] = []
    with raw.open("rb") as file:
        fd = file.fileno()
        position = 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after `position`
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            first, last = start // block_size, -(-end // block_size) - 1
            if ranges and first <= ranges[-1].last + 1:
                first = ranges.pop().first
            ranges.append(Range(first, last))
            position = end
        with_sums = []
        for r in ranges:
            file.seek(r.first * block_size)
            digest = hashlib.new(checksum_type)
            remaining = min((r.last + 1) * block_size, size) - r.first * block_size
            while remaining:
                data = file.read(min(remaining, 1 << 22))
                digest.update(data)
                remaining -= len(data)
            with_sums.append(Range(r.first, r.last, digest.hexdigest()))
    return Bmap(size, block_size, blocks_count, tuple(with_sums), checksum_type, None)
