"""Read-only inspection of a raw disk image: what a board will find on the card it is flashed to.

The flash gate (is this image worth writing?) and the virtual board (what does `mmc part`
print?) need the same answers, and neither may pull a 1.2 GB image into memory, so this seeks to
the few sectors that matter. A bad image is a finding, not an error: `inspect_image` reports it
in `ImageFacts.problem` and never raises.
"""

from __future__ import annotations

import os
import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SECTOR = 512
LOADER_LBA = 64  # RK3588 boot ROM looks for the idbloader here
RKNS = b"RKNS"
MIN_SIZE = LOADER_LBA * SECTOR + SECTOR  # anything shorter cannot even hold the loader header
EFI_SYSTEM_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
GPT_SIGNATURE = b"EFI PART"
VERSION_PATTERN = r"v\d+\.\d+\.\d+[\w.+-]*"

# The closing quote is required so a version is never cut short or run into the next word.
_MENUENTRY = re.compile(rb"""menuentry\s+["']A - Talos (""" + VERSION_PATTERN.encode() + rb""")["']""")
_VERSION_SCAN_LIMIT = 8 * 1024 * 1024
_SCAN_CHUNK = 1024 * 1024
_SCAN_OVERLAP = 256  # longer than any menuentry line we match, so a match split by a chunk edge is found
_MAX_ENTRY_ARRAY = 1024 * 1024  # a header asking for more is corrupt; don't let it make us read gigabytes

# UEFI 2.x GPT header (92 bytes) and partition entry (128 bytes), little-endian; shared with the writer.
GPT_HEADER = struct.Struct("<8s4sII4xQQQQ16sQIII")
GPT_ENTRY = struct.Struct("<16s16sQQQ72s")


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based index in the entry array, as U-Boot's `mmc part` prints it
    name: str
    type_guid: str
    unique_guid: str
    first_lba: int
    last_lba: int

    @property
    def sectors(self) -> int:
        return self.last_lba - self.first_lba + 1


@dataclass(frozen=True)
class ImageFacts:
    """What a board would find on a card holding this image.

    `problem` is None when the image could be read; otherwise the board must be treated as
    holding a blank card (a truncated image is what a failed download leaves). The other
    fields still say what was seen, for the report.
    """

    path: Path
    size_bytes: int
    problem: str | None
    rockchip_loader: bool
    gpt: bool
    partitions: tuple[Partition, ...]
    talos_version: str | None

    @property
    def efi_partition(self) -> Partition | None:
        return next((p for p in self.partitions if p.type_guid == EFI_SYSTEM_GUID), None)

    @property
    def bootable(self) -> bool:
        """A damaged image is not bootable even when its surviving GPT names an EFI partition."""
        return self.problem is None and self.gpt and self.efi_partition is not None


@dataclass(frozen=True)
class _Gpt:
    """A primary GPT U-Boot would accept; `partitions` is None when its entry array is cut off."""

    alternate_lba: int
    entries_lba: int
    entries_bytes: int
    partitions: tuple[Partition, ...] | None


def inspect_image(path: str | Path) -> ImageFacts:
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _inspect(path, f)
    except FileNotFoundError:
        return _facts(path, 0, "missing")
    except OSError as exc:
        return _facts(path, 0, f"unreadable: {exc.strerror or exc}")


def read_blocks(path: str | Path, first_lba: int, count: int) -> bytes:
    """Whole 512-byte blocks from `first_lba`; fewer than `count` when the range runs off the end.

    Short rather than padded so the virtual board can say how many blocks it really read, as
    U-Boot's `mmc read` does.
    """
    if first_lba < 0 or count < 0:
        raise ValueError(f"block range must not be negative: first_lba={first_lba}, count={count}")
    with Path(path).open("rb") as f:
        f.seek(first_lba * SECTOR)
        data = f.read(count * SECTOR)
    return data[: len(data) - len(data) % SECTOR]


def _facts(path: Path, size: int, problem: str | None, *, loader: bool = False, gpt: bool = False,
           partitions: tuple[Partition, ...] = (), version: str | None = None) -> ImageFacts:
    return ImageFacts(path=path, size_bytes=size, problem=problem, rockchip_loader=loader, gpt=gpt,
                      partitions=partitions, talos_version=version)


def _inspect(path: Path, f: BinaryIO) -> ImageFacts:
    size = f.seek(0, os.SEEK_END)  # works for block devices too, where stat() says 0
    if size % SECTOR:
        return _facts(path, size, f"not a disk image: size {size} is not a multiple of {SECTOR}")
    if size < MIN_SIZE:
        return _facts(path, size, f"truncated: {size} bytes, less than the {MIN_SIZE} that reach the loader header")
    sectors = size // SECTOR
    loader = _read(f, LOADER_LBA, 1)[: len(RKNS)] == RKNS
    gpt = _read_gpt(f, sectors)
    if gpt is None:
        return _facts(path, size, None, loader=loader)
    partitions = gpt.partitions or ()
    problem = _truncation(gpt, sectors)
    return _facts(path, size, problem, loader=loader, gpt=True, partitions=partitions,
                  version=_find_version(f, partitions, sectors))


def _read(f: BinaryIO, lba: int, count: int) -> bytes:
    f.seek(lba * SECTOR)
    return f.read(count * SECTOR)


def _within(lba: int, nbytes: int, sectors: int) -> bool:
    return lba * SECTOR + nbytes <= sectors * SECTOR


def _read_gpt(f: BinaryIO, sectors: int) -> _Gpt | None:
    """The primary GPT, or None where U-Boot would find none: a bad header or entry-array CRC."""
    block = _read(f, 1, 1)
    if len(block) < GPT_HEADER.size:
        return None
    (signature, _revision, header_size, header_crc, _current, alternate, _first_usable, _last_usable,
     _disk_guid, entries_lba, entry_count, entry_size, entries_crc) = GPT_HEADER.unpack_from(block)
    if signature != GPT_SIGNATURE or not GPT_HEADER.size <= header_size <= SECTOR:
        return None
    if zlib.crc32(block[:16] + b"\0\0\0\0" + block[20:header_size]) != header_crc:
        return None
    entries_bytes = entry_count * entry_size
    if entry_size < GPT_ENTRY.size or entry_size % GPT_ENTRY.size or entries_lba < 2:
        return None
    if entries_bytes > _MAX_ENTRY_ARRAY:
        return None
    gpt = _Gpt(alternate_lba=alternate, entries_lba=entries_lba, entries_bytes=entries_bytes, partitions=None)
    if not _within(entries_lba, entries_bytes, sectors):
        return gpt  # header fine, entries cut off: reported as truncation, not as "no GPT"
    f.seek(entries_lba * SECTOR)
    raw = f.read(entries_bytes)
    if zlib.crc32(raw) != entries_crc:
        return None
    partitions = tuple(
        _partition(index + 1, raw[offset:offset + GPT_ENTRY.size])
        for index, offset in enumerate(range(0, entries_bytes, entry_size))
    )
    return _Gpt(alternate, entries_lba, entries_bytes, tuple(p for p in partitions if p is not None))


def _partition(number: int, entry: bytes) -> Partition | None:
    type_guid, unique_guid, first, last, _attributes, name = GPT_ENTRY.unpack(entry)
    if type_guid == bytes(16):
        return None  # unused slot
    return Partition(
        number=number,
        name=name.decode("utf-16-le", errors="replace").split("\0", 1)[0],
        type_guid=str(uuid.UUID(bytes_le=type_guid)),
        unique_guid=str(uuid.UUID(bytes_le=unique_guid)),
        first_lba=first,
        last_lba=last,
    )


def _truncation(gpt: _Gpt, sectors: int) -> str | None:
    if gpt.partitions is None:
        end = gpt.entries_lba + -(-gpt.entries_bytes // SECTOR) - 1
        return f"truncated: the GPT partition entries end at LBA {end}, image has {sectors} sectors"
    for p in gpt.partitions:
        if p.last_lba >= sectors:
            return f"truncated: partition {p.number} ({p.name}) ends at LBA {p.last_lba}, image has {sectors} sectors"
    if gpt.alternate_lba >= sectors:
        return f"truncated: the backup GPT header belongs at LBA {gpt.alternate_lba}, image has {sectors} sectors"
    return None


def _find_version(f: BinaryIO, partitions: tuple[Partition, ...], sectors: int) -> str | None:
    """The version in BOOT's GRUB menu, looked for in its first 8 MiB only (grub.cfg sits early)."""
    boot = next((p for p in partitions if p.name == "BOOT"), None)
    if boot is None:
        return None
    position = boot.first_lba * SECTOR
    end = min((boot.last_lba + 1) * SECTOR, sectors * SECTOR, position + _VERSION_SCAN_LIMIT)
    carry = b""
    while position < end:
        f.seek(position)
        chunk = f.read(min(_SCAN_CHUNK, end - position))
        if not chunk:
            break
        window = carry + chunk
        match = _MENUENTRY.search(window)
        if match:
            return match.group(1).decode("ascii")
        carry = window[-_SCAN_OVERLAP:]
        position += len(chunk)
    return None
