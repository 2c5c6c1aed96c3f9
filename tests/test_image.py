"""Image inspection against synthetic Talos-like images, including the damaged ones a bench meets."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.image.layout import GPT_HEADER, SECTOR, inspect_image, read_blocks
from harness.image.synthetic import make_talos_like_image

EFI_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LINUX_TYPE = "0fc63daf-8483-4772-8e79-3d69d8477de4"
# name, type GUID, first LBA, last LBA for a 64 MiB image (131072 sectors)
LAYOUT_64 = [
    ("EFI", EFI_TYPE, 20480, 53247),
    ("BIOS", "21686148-6449-6e6f-744e-656564454649", 53248, 55295),
    ("BOOT", LINUX_TYPE, 55296, 126975),
    ("META", LINUX_TYPE, 126976, 129023),
]
BOOT_OFFSET = 55296 * SECTOR


def _patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_talos_like_image(tmp_path / "talos.raw")


def test_synthetic_image_is_recognised(image: Path) -> None:
    facts = inspect_image(image)
    assert facts.problem is None
    assert facts.size_bytes == 64 * 1024 * 1024
    assert facts.rockchip_loader and facts.gpt and facts.bootable
    assert [(p.name, p.type_guid, p.first_lba, p.last_lba) for p in facts.partitions] == LAYOUT_64
    assert [p.number for p in facts.partitions] == [1, 2, 3, 4]
    assert facts.efi_partition is not None and facts.efi_partition.name == "EFI"
    assert facts.efi_partition.sectors == 16 * 2048
    assert len({p.unique_guid for p in facts.partitions}) == 4
    assert facts.talos_version == "v1.9.1"


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    first = make_talos_like_image(tmp_path / "a.raw", size_mib=30)
    second = make_talos_like_image(tmp_path / "b.raw", size_mib=30)
    assert filecmp.cmp(first, second, shallow=False)


def test_image_without_loader_still_has_its_table(tmp_path: Path) -> None:
    facts = inspect_image(make_talos_like_image(tmp_path / "x.raw", loader=False))
    assert facts.problem is None
    assert not facts.rockchip_loader
    assert facts.gpt and facts.bootable and facts.talos_version == "v1.9.1"
    assert read_blocks(tmp_path / "x.raw", 16384, 1) == bytes(SECTOR)


def test_image_without_gpt_has_no_partitions(tmp_path: Path) -> None:
    facts = inspect_image(make_talos_like_image(tmp_path / "x.raw", gpt=False))
    assert facts.problem is None
    assert facts.rockchip_loader
    assert not facts.gpt and not facts.bootable
    assert facts.partitions == () and facts.efi_partition is None
    assert facts.talos_version is None  # no BOOT partition to look in, though the text is on disk


def test_blank_card_is_a_readable_empty_disk(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as f:
        f.truncate(8 * 1024 * 1024)
    facts = inspect_image(blank)
    assert facts.problem is None
    assert not facts.rockchip_loader and not facts.gpt and not facts.bootable
    assert facts.partitions == () and facts.talos_version is None


def test_missing_file(tmp_path: Path) -> None:
    facts = inspect_image(tmp_path / "nope.raw")
    assert facts.problem == "missing"
    assert facts.size_bytes == 0 and not facts.bootable


def test_directory_is_reported_not_raised(tmp_path: Path) -> None:
    facts = inspect_image(tmp_path)
    assert facts.problem is not None and facts.problem.startswith("unreadable")


def test_image_cut_in_half_is_truncated(image: Path) -> None:
    os.truncate(image, image.stat().st_size // 2)
    facts = inspect_image(image)
    assert facts.problem is not None and facts.problem.startswith("truncated")
    assert "BOOT" in facts.problem
    assert facts.rockchip_loader and facts.gpt  # still reported: they say how far the write got
    assert not facts.bootable


def test_image_missing_only_its_backup_gpt_is_truncated(image: Path) -> None:
    os.truncate(image, image.stat().st_size - SECTOR)
    facts = inspect_image(image)
    assert facts.problem is not None and facts.problem.startswith("truncated")
    assert "backup GPT" in facts.problem


def test_tiny_file_is_truncated(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.raw"
    tiny.write_bytes(bytes(64 * SECTOR))  # ends exactly where the loader header would begin
    facts = inspect_image(tiny)
    assert facts.problem is not None and facts.problem.startswith("truncated")


def test_entry_array_past_the_end_is_truncated(image: Path) -> None:
    header = bytearray(read_blocks(image, 1, 1)[: GPT_HEADER.size])
    fields = list(GPT_HEADER.unpack(header))
    fields[3] = 0
    fields[9] = 131072  # partition entries "at" the first sector past the end
    fields[3] = zlib.crc32(GPT_HEADER.pack(*fields))
    _patch(image, SECTOR, GPT_HEADER.pack(*fields))
    facts = inspect_image(image)
    assert facts.problem is not None and facts.problem.startswith("truncated")
    assert facts.gpt and facts.partitions == ()


def test_corrupted_gpt_header_crc_means_no_gpt(image: Path) -> None:
    _patch(image, SECTOR + 56, b"\xff")  # a disk GUID byte, CRC left stale
    facts = inspect_image(image)
    assert facts.problem is None
    assert not facts.gpt and facts.partitions == () and not facts.bootable
    assert facts.rockchip_loader


def test_corrupted_partition_entries_mean_no_gpt(image: Path) -> None:
    _patch(image, 2 * SECTOR + 56, b"X")  # first letter of the EFI entry's name
    facts = inspect_image(image)
    assert not facts.gpt and facts.partitions == ()


def test_size_not_a_multiple_of_a_sector(image: Path) -> None:
    with image.open("ab") as f:
        f.write(b"\0" * 100)
    size = 64 * 1024 * 1024 + 100
    facts = inspect_image(image)
    assert facts.problem == f"not a disk image: size {size} is not a multiple of 512"
    assert facts.size_bytes == size


def test_read_blocks(image: Path) -> None:
    assert read_blocks(image, 64, 1).startswith(b"RKNS")
    mbr = read_blocks(image, 0, 1)
    assert mbr[510:] == b"\x55\xaa" and mbr[450] == 0xEE
    assert read_blocks(image, 1, 1).startswith(b"EFI PART")
    assert read_blocks(image, 131071, 1).startswith(b"EFI PART")  # backup header in the last sector
    two = read_blocks(image, 55296, 2)
    assert len(two) == 2 * SECTOR and two.startswith(b'set default="A - Talos v1.9.1"')


def test_read_blocks_past_the_end_is_short(image: Path) -> None:
    assert len(read_blocks(image, 131070, 8)) == 2 * SECTOR
    assert read_blocks(image, 200000, 1) == b""
    with pytest.raises(ValueError):
        read_blocks(image, -1, 1)


def test_version_with_suffix(tmp_path: Path) -> None:
    facts = inspect_image(make_talos_like_image(tmp_path / "x.raw", talos_version="v1.10.0-alpha.1"))
    assert facts.talos_version == "v1.10.0-alpha.1"


def test_version_in_single_quotes(image: Path) -> None:
    _patch(image, BOOT_OFFSET, b"\0" * 4096)
    _patch(image, BOOT_OFFSET, b"menuentry 'A - Talos v1.8.3' {\n}\n")
    assert inspect_image(image).talos_version == "v1.8.3"


def test_version_split_across_read_chunks_is_found(image: Path) -> None:
    _patch(image, BOOT_OFFSET, b"\0" * 4096)
    _patch(image, BOOT_OFFSET + 1024 * 1024 - 12, b'menuentry "A - Talos v1.9.2" {')
    assert inspect_image(image).talos_version == "v1.9.2"


def test_version_beyond_the_first_8_mib_of_boot_is_not_looked_for(image: Path) -> None:
    _patch(image, BOOT_OFFSET, b"\0" * 4096)
    _patch(image, BOOT_OFFSET + 9 * 1024 * 1024, b'menuentry "A - Talos v1.9.2" {')
    facts = inspect_image(image)
    assert facts.talos_version is None
    assert facts.problem is None and facts.bootable


def test_version_needs_the_menuentry_not_just_the_default(image: Path) -> None:
    _patch(image, BOOT_OFFSET, b"\0" * 4096)
    _patch(image, BOOT_OFFSET, b'set default="A - Talos v1.9.1"\n')
    assert inspect_image(image).talos_version is None


def test_sparse_2_gib_image(tmp_path: Path) -> None:
    path = make_talos_like_image(tmp_path / "big.raw", talos_version="v1.9.5", size_mib=2048)
    facts = inspect_image(path)
    assert facts.problem is None and facts.bootable
    assert facts.size_bytes == 2 * 1024**3
    sectors = 2 * 1024**3 // SECTOR
    boot, meta = facts.partitions[2], facts.partitions[3]
    assert (boot.first_lba, boot.last_lba) == (55296, sectors - 4096 - 1)
    assert (meta.first_lba, meta.last_lba) == (sectors - 4096, sectors - 2048 - 1)
    assert facts.talos_version == "v1.9.5"
    assert path.stat().st_blocks * 512 < 8 * 1024 * 1024  # holes, not 2 GiB of zeros


def test_generator_refuses_what_it_cannot_lay_out(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 30"):
        make_talos_like_image(tmp_path / "x.raw", size_mib=29)
    with pytest.raises(ValueError, match="talos_version"):
        make_talos_like_image(tmp_path / "x.raw", talos_version="1.9.1")
    assert inspect_image(make_talos_like_image(tmp_path / "x.raw", size_mib=30)).partitions[2].sectors == 2048


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk (util-linux) is not installed")
def test_sfdisk_reads_the_synthetic_image_the_same_way(image: Path) -> None:
    verify = subprocess.run(["sfdisk", "--verify", str(image)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    seen = [(p["name"], p["type"].lower(), p["start"], p["start"] + p["size"] - 1) for p in table["partitions"]]
    assert seen == LAYOUT_64
    ours = inspect_image(image).partitions
    assert [p["uuid"].lower() for p in table["partitions"]] == [p.unique_guid for p in ours]
