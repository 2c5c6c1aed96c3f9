"""The flash image pipeline on small images: every format round-trips byte-exact, only what cannot matter is
skipped, stale data on a reused medium is overwritten, verify and a vanishing target are caught, memory stays bounded.
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import os
import struct
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from harness.errors import BenchError, BoardFailure, ConfigError
from harness.flash import (
    ImageCorrupt,
    Progress,
    Target,
    VerifyMismatch,
    bmap_beside,
    create_bmap,
    open_image,
    open_target,
    parse_bmap,
    write_image,
)
from harness.flash import writer as writer_module
from harness.steps import StepRecorder

MIB = 1 << 20
CHUNK = 256 * 1024  # small chunks: a few-MiB image still spans many, so chunk edges are exercised


def sparse_image(path: Path, size: int = 6 * MIB + 1234, data_at: tuple[int, ...] = (0, 3 * MIB)) -> bytes:
    """A raw image of `size` bytes: 300 KiB of random data at each offset in `data_at`, holes elsewhere."""
    with path.open("wb") as file:
        file.truncate(size)
        for offset in data_at:
            file.seek(offset)
            file.write(os.urandom(300 * 1024))
    return path.read_bytes()


def compress(raw: Path, kind: str) -> Path:
    data = raw.read_bytes()
    if kind == "raw":
        return raw
    if kind == "xz":  # two streams with padding between: xz allows it, and a reader must follow
        out = raw.with_name(raw.name + ".xz")
        half = len(data) // 2
        out.write_bytes(lzma.compress(data[:half]) + bytes(8) + lzma.compress(data[half:]))
        return out
    out = raw.with_name(raw.name + ".zst")
    out.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(data))
    return out


@pytest.mark.parametrize("kind", ["raw", "xz", "zst"])
def test_each_format_round_trips_byte_exact(tmp_path: Path, kind: str) -> None:
    data = sparse_image(tmp_path / "talos.raw")
    image = compress(tmp_path / "talos.raw", kind)
    summary = write_image(image, tmp_path / "card.img", bmap=None, chunk_size=CHUNK)
    assert (tmp_path / "card.img").read_bytes() == data
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    assert summary.image_size == len(data)
    assert summary.verified is True
    assert summary.bytes_written + summary.bytes_skipped == len(data)


def test_multi_frame_zst_and_direct_io_round_trip(tmp_path: Path) -> None:
    data = os.urandom(MIB + 3000) + bytes(2 * MIB) + os.urandom(5000)  # an unaligned tail: buffered, not O_DIRECT
    image = tmp_path / "talos.raw.zst"
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    image.write_bytes(compressor.compress(data[:MIB]) + compressor.compress(data[MIB:]))
    target = open_target(tmp_path / "card.img", direct=True)
    try:
        write_image(image, target, bmap=None, chunk_size=CHUNK)
    finally:
        target.close()
    assert (tmp_path / "card.img").read_bytes() == data


def test_a_missing_image_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.raw\.xz"):
        write_image(tmp_path / "nowhere.raw.xz", tmp_path / "card.img")
    assert not (tmp_path / "card.img").exists()  # nothing opened before the image was found


@pytest.mark.parametrize("kind", ["xz", "zst"])
def test_a_truncated_image_fails_naming_the_file_and_offset_reached(tmp_path: Path, kind: str) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(3 * MIB))
    image = compress(tmp_path / "talos.raw", kind)
    whole = image.read_bytes()
    image.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(ImageCorrupt) as caught:
        write_image(image, tmp_path / "card.img", bmap=None, chunk_size=CHUNK)
    error = caught.value
    assert isinstance(error, BoardFailure)  # the image's fault, not the bench's
    assert 0 < error.offset < 3 * MIB
    assert str(image) in str(error) and f"offset {error.offset}" in str(error)
    assert "truncated" in str(error)
    assert "not a usable medium" in str(error)  # the target's state is said


def test_corrupt_zst_data_is_caught_by_its_checksum(tmp_path: Path) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(MIB))
    image = compress(tmp_path / "talos.raw", "zst")
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in a stored (raw) block: only the frame checksum can see it
    image.write_bytes(bytes(data))
    with pytest.raises(ImageCorrupt, match="zstd"):
        for _ in open_image(image).chunks(CHUNK):
            pass


def test_chunks_are_exact_sized_whatever_the_decompressor_returns(tmp_path: Path) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(MIB + 17) + bytes(3 * MIB))
    for kind in ("xz", "zst"):
        sizes = [len(chunk) for chunk in open_image(compress(tmp_path / "talos.raw", kind)).chunks(CHUNK)]
        assert sizes[:-1] == [CHUNK] * (len(sizes) - 1) and sizes[-1] == (4 * MIB + 17) % CHUNK


def test_zero_runs_become_holes_on_a_fresh_file(tmp_path: Path) -> None:
    data = sparse_image(tmp_path / "talos.raw", size=16 * MIB)
    summary = write_image(tmp_path / "talos.raw", tmp_path / "card.img", bmap=None, chunk_size=CHUNK)
    card = tmp_path / "card.img"
    assert card.read_bytes() == data
    assert card.stat().st_size == len(data)
    assert card.stat().st_blocks * 512 < 2 * MIB  # 600 KiB of data; the 15 MiB of zeros were never allocated
    assert summary.bytes_skipped > 14 * MIB


def test_a_reused_file_gets_every_block_so_stale_data_in_a_zero_run_is_overwritten(tmp_path: Path) -> None:
    data = sparse_image(tmp_path / "talos.raw", size=8 * MIB)
    card = tmp_path / "card.img"
    card.write_bytes(b"OLD META PARTITION " * (9 * MIB // 19))  # last week's image, longer than this one
    summary = write_image(tmp_path / "talos.raw", open_target(card, reuse=True), bmap=None, chunk_size=CHUNK)
    assert card.read_bytes()[: len(data)] == data
    assert summary.bytes_skipped == 0 and summary.bytes_written == len(data)


def test_a_block_device_zeroes_its_zero_runs_with_blkzeroout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert writer_module.BLKZEROOUT == 0x127F  # _IO(0x12, 127) in <linux/fs.h>
    data = sparse_image(tmp_path / "talos.raw", size=4 * MIB, data_at=(0,))
    card = tmp_path / "card.img"
    card.write_bytes(b"\xaa" * 4 * MIB)
    calls: list[tuple[int, int]] = []

    def ioctl(fd: int, request: int, arg: bytes) -> int:
        assert request == 0x127F
        start, length = struct.unpack("QQ", arg)
        calls.append((start, length))
        os.pwrite(fd, bytes(length), start)  # what the kernel does to the device
        return 0

    monkeypatch.setattr(writer_module.fcntl, "ioctl", ioctl)
    fd = os.open(card, os.O_RDWR)
    target = Target(card, fd, block_device=True, fresh=False)  # a regular file standing in for /dev/sdX
    try:
        summary = write_image(tmp_path / "talos.raw", target, bmap=None, chunk_size=CHUNK)
    finally:
        target.close()
    assert calls and all(start % 512 == 0 and length % 512 == 0 for start, length in calls)
    assert summary.bytes_zeroed == sum(length for _, length in calls) > 3 * MIB
    assert card.read_bytes() == data


def test_an_image_larger_than_the_block_device_is_refused_before_writing(tmp_path: Path) -> None:
    sparse_image(tmp_path / "talos.raw", size=4 * MIB)
    card = tmp_path / "card.img"
    card.write_bytes(b"\xaa" * MIB)
    target = Target(card, os.open(card, os.O_RDWR), block_device=True, fresh=False)
    try:
        with pytest.raises(BenchError, match="does not fit"):
            write_image(tmp_path / "talos.raw", target, bmap=None)
    finally:
        target.close()
    assert card.read_bytes() == b"\xaa" * MIB


# The output of `bmaptool create` 3.6 (comments trimmed): the parser must read the real tool's format.
BMAPTOOL_36 = """<?xml version="1.0" ?>
<!-- This file contains the block map for an image file -->
<bmap version="2.0">
    <!-- Image size in bytes: 8.0 MiB -->
    <ImageSize> 8388608 </ImageSize>
    <BlockSize> 4096 </BlockSize>
    <BlocksCount> 2048 </BlocksCount>
    <MappedBlocksCount> 256  </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> 0000000000000000000000000000000000000000000000000000000000000000 </BmapFileChecksum>
    <BlockMap>
        <Range chksum="e4d376eb7e9db4819b462dc3c0858ee39a6c781ad48843506397b5f63d675028"> 512-767 </Range>
    </BlockMap>
</bmap>
"""


def test_parses_bmaptool_output_and_checks_its_file_checksum(tmp_path: Path) -> None:
    path = tmp_path / "x.bmap"
    path.write_text(BMAPTOOL_36.replace("0" * 64, hashlib.sha256(BMAPTOOL_36.encode()).hexdigest()))
    bmap = parse_bmap(path)
    assert (bmap.image_size, bmap.block_size, bmap.blocks_count, bmap.mapped_blocks) == (8 * MIB, 4096, 2048, 256)
    assert bmap.extents()[0][:2] == (2 * MIB, 3 * MIB)
    assert bmap.ranges[0].checksum and bmap.ranges[0].checksum.startswith("e4d376")
    path.write_text(path.read_text().replace("512-767", "512-766"))
    with pytest.raises(ConfigError, match="BmapFileChecksum"):
        parse_bmap(path)


def test_bmap_unmapped_ranges_are_skipped_even_on_a_reused_medium(tmp_path: Path) -> None:
    data = sparse_image(tmp_path / "talos.raw", size=8 * MIB)
    bmap = create_bmap(tmp_path / "talos.raw")
    assert [(r.first, r.last) for r in bmap.ranges] == [(0, 74), (768, 842)]  # 300 KiB at 0 and at 3 MiB
    image = compress(tmp_path / "talos.raw", "zst")
    (tmp_path / "talos.raw.bmap").write_text(bmap.to_xml())
    assert bmap_beside(image) == tmp_path / "talos.raw.bmap"
    card = tmp_path / "card.img"
    card.write_bytes(b"\x55" * 8 * MIB)
    summary = write_image(image, open_target(card, reuse=True), chunk_size=CHUNK)  # bmap="auto": found beside
    got = card.read_bytes()
    for start, end, _ in bmap.extents():
        assert got[start:end] == data[start:end]
    assert got[MIB:2 * MIB] == b"\x55" * MIB  # unmapped: left alone, as bmaptool does
    assert summary.bytes_written == 2 * 75 * 4096 and summary.bytes_skipped == len(data) - 2 * 75 * 4096
    assert summary.verified is True  # verify reads back only what the map says was written


def test_a_range_that_does_not_match_its_bmap_checksum_is_image_corruption(tmp_path: Path) -> None:
    sparse_image(tmp_path / "talos.raw", size=4 * MIB)
    bmap = create_bmap(tmp_path / "talos.raw")
    with (tmp_path / "talos.raw").open("r+b") as file:
        file.seek(1000)
        file.write(b"bitrot")
    with pytest.raises(ImageCorrupt, match=r"offset 0: bytes 0-307199 do not match the sha256"):
        write_image(tmp_path / "talos.raw", tmp_path / "card.img", bmap=bmap, chunk_size=CHUNK)


class CorruptingTarget(Target):
    """A medium that silently loses one write: byte `bad` reads back flipped."""

    bad = 0

    def write(self, offset: int, data: memoryview | bytes) -> None:
        buffer = bytearray(data)
        if offset <= self.bad < offset + len(buffer):
            buffer[self.bad - offset] ^= 0x01
        super().write(offset, buffer)


def test_verify_names_the_first_bad_offset_after_dropping_the_page_cache(tmp_path: Path) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(2 * MIB))
    image = compress(tmp_path / "talos.raw", "xz")
    card = tmp_path / "card.img"
    target = CorruptingTarget(card, os.open(card, os.O_RDWR | os.O_CREAT | os.O_TRUNC), block_device=False,
                              fresh=True)
    target.bad = MIB + 777
    dropped: list[bool] = []
    original = target.drop_cache
    target.drop_cache = lambda: (dropped.append(True), original())[1]  # type: ignore[method-assign]
    try:
        with pytest.raises(VerifyMismatch) as caught:
            write_image(image, target, bmap=None, chunk_size=CHUNK)
    finally:
        target.close()
    assert caught.value.offset == MIB + 777 and f"offset {MIB + 777}" in str(caught.value)
    assert dropped == [True]
    assert isinstance(caught.value, BenchError)


class VanishingTarget(Target):
    """A card pulled out mid-write: writes past `limit` fail as the kernel reports it (ENODEV)."""

    limit = 0

    def write(self, offset: int, data: memoryview | bytes) -> None:
        if offset + len(data) > self.limit:
            raise self._failed("writing", offset, OSError(errno.ENODEV, os.strerror(errno.ENODEV)))
        super().write(offset, data)


def test_a_target_vanishing_mid_write_is_a_bench_error_and_nothing_hangs(tmp_path: Path) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(4 * MIB))
    card = tmp_path / "card.img"
    target = VanishingTarget(card, os.open(card, os.O_RDWR | os.O_CREAT), block_device=False, fresh=False)
    target.limit = MIB
    started = time.monotonic()
    try:
        with pytest.raises(BenchError, match=r"vanished or failed while writing at offset 1048576"):
            write_image(tmp_path / "talos.raw", target, bmap=None, chunk_size=CHUNK, queue_depth=1)
    finally:
        target.close()
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("flash-")]


class SlowTarget(Target):
    def write(self, offset: int, data: memoryview | bytes) -> None:
        time.sleep(0.002)
        super().write(offset, data)


def test_memory_stays_bounded_by_the_queue_depth(tmp_path: Path) -> None:
    size = 48 * MIB
    sparse_image(tmp_path / "talos.raw", size=size, data_at=(0, 20 * MIB, 40 * MIB))
    card = tmp_path / "card.img"
    target = SlowTarget(card, os.open(card, os.O_RDWR | os.O_CREAT), block_device=False, fresh=False)
    tracemalloc.start()
    try:
        summary = write_image(tmp_path / "talos.raw", target, bmap=None, chunk_size=MIB, queue_depth=2,
                              verify=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        target.close()
    assert summary.image_size == size
    assert summary.peak_chunks <= 2 + 2  # queued, plus the one each consumer holds
    assert peak < 10 * MIB  # of a 48 MiB image


def test_progress_prints_a_line_per_ten_percent_when_not_a_terminal(tmp_path: Path) -> None:
    sparse_image(tmp_path / "talos.raw", size=5 * MIB)
    stream = io.StringIO()
    write_image(tmp_path / "talos.raw", tmp_path / "card.img", bmap=None, chunk_size=CHUNK,
                progress=Progress("flash talos.raw", stream=stream))
    lines = stream.getvalue().splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines[:-1]] == [f"{p}%" for p in range(10, 101, 10)]
    assert "verified" in lines[-1] and "\r" not in stream.getvalue()


def test_progress_on_a_terminal_refreshes_one_line_with_rate_and_eta() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress("flash", stream=stream, tty=True, clock=lambda: now[0])
    for step in range(1, 5):
        now[0] = step * 1.0
        progress.update(step * 10_000_000, step / 4)
    progress.finish("done")
    text = stream.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 2
    assert "10.0 MB/s" in text and "ETA 0:03" in text and "ETA 0:00" in text


def test_the_flash_is_recorded_as_a_step(tmp_path: Path) -> None:
    data = sparse_image(tmp_path / "talos.raw", size=2 * MIB)
    steps = StepRecorder(None)
    write_image(tmp_path / "talos.raw", tmp_path / "card.img", bmap=None, chunk_size=CHUNK, steps=steps)
    (tmp_path / "bad.raw.xz").write_bytes(lzma.compress(data)[:5000])
    with pytest.raises(ImageCorrupt):
        write_image(tmp_path / "bad.raw.xz", tmp_path / "card2.img", bmap=None, chunk_size=CHUNK, steps=steps)
    good, bad = steps.events
    assert good.name == "flash" and good.outcome == "pass"
    assert good.args["image"] == str(tmp_path / "talos.raw") and good.args["bytes"] == len(data)
    assert good.args["sha256"] == hashlib.sha256(data).hexdigest() and good.args["verified"] is True
    assert bad.outcome == "fail" and bad.error and "ImageCorrupt" in bad.error


@pytest.mark.parametrize("checksums", [True, False])
def test_verify_with_a_bmap_reads_back_the_mapped_ranges(tmp_path: Path, checksums: bool) -> None:
    """With range checksums the read-back is checked against them; without, against a hash made while writing."""
    sparse_image(tmp_path / "talos.raw", size=8 * MIB)
    bmap = create_bmap(tmp_path / "talos.raw")
    if not checksums:
        bmap = replace(bmap, ranges=tuple(replace(r, checksum=None) for r in bmap.ranges), checksum_type=None)
    card = tmp_path / "card.img"
    target = CorruptingTarget(card, os.open(card, os.O_RDWR | os.O_CREAT | os.O_TRUNC), block_device=False,
                              fresh=True)
    target.bad = 3 * MIB + 4321  # inside the second mapped range
    try:
        with pytest.raises(VerifyMismatch) as caught:
            write_image(tmp_path / "talos.raw", target, bmap=bmap, chunk_size=CHUNK)
    finally:
        target.close()
    assert caught.value.offset == 3 * MIB + 4321


def test_a_checksummed_bmap_stands_in_for_the_image_hash_and_a_raw_image_is_read_only_where_mapped(
        tmp_path: Path) -> None:
    data = sparse_image(tmp_path / "talos.raw", size=8 * MIB)
    (tmp_path / "talos.raw.bmap").write_text(create_bmap(tmp_path / "talos.raw").to_xml())
    source = open_image(tmp_path / "talos.raw")
    summary = write_image(source, tmp_path / "card.img", chunk_size=CHUNK)
    assert (tmp_path / "card.img").read_bytes() == data
    assert source.compressed_read == 2 * 75 * 4096  # the mapped blocks, not the 8 MiB
    assert summary.sha256 is None and summary.identity.startswith("bmap-sha256:")
    again = write_image(tmp_path / "talos.raw", tmp_path / "card2.img", chunk_size=CHUNK)
    assert again.identity == summary.identity  # the same image names itself the same way
    full = write_image(tmp_path / "talos.raw", tmp_path / "card3.img", chunk_size=CHUNK, image_sha256=True)
    assert full.sha256 == hashlib.sha256(data).hexdigest() and full.identity == f"sha256:{full.sha256}"


class RecordingTarget(Target):
    calls: list[tuple[int, int, int]]

    def write_behind(self, offset: int, length: int, settled: int) -> None:
        self.calls.append((offset, length, settled))
        super().write_behind(offset, length, settled)


def test_writeback_is_started_per_chunk_and_waited_for_a_few_chunks_behind(tmp_path: Path) -> None:
    (tmp_path / "talos.raw").write_bytes(os.urandom(3 * MIB))
    card = tmp_path / "card.img"
    target = RecordingTarget(card, os.open(card, os.O_RDWR | os.O_CREAT), block_device=False, fresh=True)
    target.calls = []
    try:
        write_image(tmp_path / "talos.raw", target, bmap=None, chunk_size=CHUNK)
    finally:
        target.close()
    assert [offset for offset, _, _ in target.calls] == list(range(0, 3 * MIB, CHUNK))
    assert all(settled == offset - writer_module.WRITE_BEHIND_CHUNKS * CHUNK for offset, _, settled in target.calls)
    assert writer_module._sync_file_range is not None  # glibc has it: the write-behind is real here
