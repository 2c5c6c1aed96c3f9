"""A small image laid out like a NanoPi M6 Talos image, for tests and the virtual board.

The real image is ~1.2 GB and cannot live in the repository, but what the harness checks is
only its layout: loader magic, GPT, partition names and places, and the GRUB entry naming the
version. This writes exactly those into a sparse file and leaves everything else as holes, so a
64 MiB image costs a few KiB of disk. GUIDs come from uuid5 of fixed names, so the same
arguments always give the same bytes.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from pathlib import Path

from harness.image.layout import (
    EFI_SYSTEM_GUID,
    GPT_ENTRY,
    GPT_HEADER,
    GPT_SIGNATURE,
    LOADER_LBA,
    RKNS,
    SECTOR,
    VERSION_PATTERN,
    Partition,
)

MIB = 1024 * 1024 // SECTOR  # sectors per MiB
UBOOT_LBA = 16384  # u-boot.itb in the two-file Rockchip layout (8 MiB)
PARTITION_START_LBA = 20480  # 10 MiB, past the bootloader
BIOS_BOOT_GUID = "21686148-6449-6e6f-744e-656564454649"
LINUX_DATA_GUID = "0fc63daf-8483-4772-8e79-3d69d8477de4"
EFI_MIB = 16  # 100 MiB in the real image; scaled down so the whole image fits in tens of MiB
ENTRY_COUNT = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRY_COUNT * ENTRY_SIZE // SECTOR  # 32: primary entries fill LBA 2-33
# 10 MiB lead-in, EFI, then 1 MiB each for BIOS, the smallest BOOT, META and the backup GPT's last MiB.
MIN_SIZE_MIB = PARTITION_START_LBA // MIB + EFI_MIB + 4
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "talos-sbc-harness/synthetic-image")

_GRUB_CFG = """\
set default="A - Talos {version}"
set timeout=3

insmod all_video

terminal_input console
terminal_output console

menuentry "A - Talos {version}" {{
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz talos.platform=metal console=ttyS2,1500000n8 init_on_alloc=1 slab_nomerge pti=on
  initrd /A/initramfs.xz
}}
menuentry "Reset Talos installation and return to maintenance mode" {{
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz talos.platform=metal console=ttyS2,1500000n8 talos.experimental.wipe=system:EPHEMERAL,STATE
  initrd /A/initramfs.xz
}}
"""


def make_talos_like_image(path: str | Path, *, talos_version: str = "v1.9.1", loader: bool = True,
                          gpt: bool = True, size_mib: int = 64) -> Path:
    """Write the image; `loader=False` / `gpt=False` leave those regions blank, as a wiped card would."""
    if not re.fullmatch(VERSION_PATTERN, talos_version):
        raise ValueError(f"talos_version {talos_version!r} does not look like v1.9.1")
    if size_mib < MIN_SIZE_MIB:
        raise ValueError(f"size_mib={size_mib} is too small for the Talos layout; it needs at least {MIN_SIZE_MIB}")
    sectors = size_mib * MIB
    partitions = _partitions(sectors)
    boot = next(p for p in partitions if p.name == "BOOT")
    path = Path(path)
    with path.open("wb") as f:
        f.truncate(sectors * SECTOR)
        regions: dict[int, bytes] = {boot.first_lba: _GRUB_CFG.format(version=talos_version).encode()}
        if loader:
            regions[LOADER_LBA] = RKNS + b" synthetic idbloader"
            regions[UBOOT_LBA] = b"SYNTHETIC U-BOOT"
        if gpt:
            regions.update(_gpt_regions(partitions, sectors))
        for lba, data in regions.items():
            f.seek(lba * SECTOR)
            f.write(data)
    return path


def _partitions(sectors: int) -> tuple[Partition, ...]:
    """EFI, BIOS, BOOT, META from LBA 20480, 1 MiB aligned, META last before the backup GPT."""
    efi_first = PARTITION_START_LBA
    bios_first = efi_first + EFI_MIB * MIB
    boot_first = bios_first + MIB
    last_usable = sectors - ENTRY_SECTORS - 2
    meta_first = (last_usable - MIB + 1) // MIB * MIB
    spans = [("EFI", EFI_SYSTEM_GUID, efi_first, bios_first - 1),
             ("BIOS", BIOS_BOOT_GUID, bios_first, boot_first - 1),
             ("BOOT", LINUX_DATA_GUID, boot_first, meta_first - 1),
             ("META", LINUX_DATA_GUID, meta_first, meta_first + MIB - 1)]
    return tuple(
        Partition(number=n, name=name, type_guid=type_guid, unique_guid=str(uuid.uuid5(_NAMESPACE, name)),
                  first_lba=first, last_lba=last)
        for n, (name, type_guid, first, last) in enumerate(spans, start=1)
    )


def _gpt_regions(partitions: tuple[Partition, ...], sectors: int) -> dict[int, bytes]:
    """Protective MBR, primary GPT at LBA 1-33 and its backup in the last 33 sectors."""
    entries = b"".join(_entry(p) for p in partitions).ljust(ENTRY_COUNT * ENTRY_SIZE, b"\0")
    last = sectors - 1
    backup_entries = last - ENTRY_SECTORS
    return {
        0: _protective_mbr(sectors),
        1: _header(current=1, alternate=last, entries_lba=2, entries=entries, sectors=sectors),
        2: entries,
        backup_entries: entries,
        last: _header(current=last, alternate=1, entries_lba=backup_entries, entries=entries, sectors=sectors),
    }


def _protective_mbr(sectors: int) -> bytes:
    # One 0xEE partition covering the disk tells MBR-only tools the disk is in use.
    entry = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(sectors - 1, 0xFFFFFFFF))
    return bytes(446) + entry + bytes(48) + b"\x55\xaa"


def _header(*, current: int, alternate: int, entries_lba: int, entries: bytes, sectors: int) -> bytes:
    fields = [GPT_SIGNATURE, b"\x00\x00\x01\x00", GPT_HEADER.size, 0, current, alternate, ENTRY_SECTORS + 2,
              sectors - ENTRY_SECTORS - 2, uuid.uuid5(_NAMESPACE, "disk").bytes_le, entries_lba, ENTRY_COUNT,
              ENTRY_SIZE, zlib.crc32(entries)]
    fields[3] = zlib.crc32(GPT_HEADER.pack(*fields))  # the CRC is computed with its own field zero
    return GPT_HEADER.pack(*fields)


def _entry(p: Partition) -> bytes:
    return GPT_ENTRY.pack(uuid.UUID(p.type_guid).bytes_le, uuid.UUID(p.unique_guid).bytes_le,
                       p.first_lba, p.last_lba, 0, p.name.encode("utf-16-le"))
