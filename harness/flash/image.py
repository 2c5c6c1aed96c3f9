"""An image to flash, read as a stream of decompressed chunks: `.raw`, `.raw.xz` or `.raw.zst`.

Why streaming: a Talos image is ~1.2 GB decompressed, and a temporary file would cost the disk
space and a second full write before the card sees a byte. Each format is decompressed with a
bounded output per call, so memory stays at one chunk whatever the compression ratio (a gigabyte
of zeros compresses to a few kilobytes; one unbounded call would return all of it at once).

Why the offset in every error: a truncated download or a flipped bit is the image's fault
(`ImageCorrupt` is a `BoardFailure`: the gate fails, the bench is fine), and the decompressed
offset reached tells the engineer how much of the target was already overwritten.

`.xz` uses the standard library's `lzma`. `.zst` uses the `zstandard` package, fed one zstd block
at a time: its streaming reader returns a clean end of file on a truncated frame, so the frames and
blocks are walked here (RFC 8878 section 3.1) and an input that ends inside one is reported.
"""

from __future__ import annotations

import lzma
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from harness.errors import BoardFailure, ConfigError

Compression = Literal["raw", "xz", "zst"]
READ_SIZE = 1 << 20  # compressed bytes read per call
PIECE = 1 << 20  # most decompressed bytes asked of lzma per call: bounds memory on runs of zeros
ZSTD_MAGIC = 0xFD2FB528
ZSTD_SKIPPABLE = 0x184D2A50  # ...0x184D2A5F: a skippable frame, any low nibble
_ZSTD_DICT_ID_BYTES = (0, 1, 2, 4)
_ZSTD_FCS_BYTES = (0, 2, 4, 8)


class ImageCorrupt(BoardFailure):
    """The image's compressed data is truncated or corrupt (or disagrees with its `.bmap`).

    `offset` is the decompressed offset reached: bytes before it may already be on the target.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"image {path} is corrupt at decompressed offset {offset}: {reason}")


def compression_of(path: Path) -> Compression:
    """The format by the file name's last suffix: `.xz`, `.zst`, anything else is raw."""
    suffix = path.suffix.lower()
    return "xz" if suffix == ".xz" else "zst" if suffix in (".zst", ".zstd") else "raw"


class ImageSource:
    """One image file, read in order as decompressed chunks of exactly `chunk_size` (the last may be shorter).

    `compressed_read` / `compressed_size` say how far through the file the reader is: the progress
    line's fraction when the decompressed size is unknown (`size` is None for an `.xz`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.compression = compression_of(path)
        self.compressed_size = path.stat().st_size
        self.compressed_read = 0
        self.size: int | None = self.compressed_size if self.compression == "raw" else None
        if self.compression == "zst":
            self.size = _zstd_content_size(path)

    def chunks(self, chunk_size: int, only: list[tuple[int, int]] | None = None) -> Iterator[bytes | bytearray]:
        """The image's decompressed bytes as `chunk_size` chunks; raises `ImageCorrupt` naming the offset.

        `only`: byte extents the caller will use (a bmap's mapped ranges). A raw image then reads just
        those and gives zeros elsewhere, as bmaptool does: a sparse 1.2 GB image is read as its few hundred
        MB of data. A compressed image must be decompressed in full anyway and ignores it.
        """
        if chunk_size <= 0:
            raise ValueError(f"a chunk size must be more than 0 bytes, not {chunk_size}")
        self.compressed_read = 0
        with self.path.open("rb", buffering=0) as file:
            if self.compression == "raw" and only is not None:
                yield from self._raw_extents(file.fileno(), chunk_size, only)
                return
            if self.compression == "raw":
                yield from self._raw(file, chunk_size)
                return
            pieces = self._xz(file) if self.compression == "xz" else self._zst(file)
            yield from _rechunk(pieces, chunk_size)

    def _read(self, file: BinaryIO, size: int) -> bytes:
        data = file.read(size)
        self.compressed_read += len(data)
        return data

    def _raw(self, file: BinaryIO, chunk_size: int) -> Iterator[bytes]:
        while True:
            chunk = self._read(file, chunk_size)
            if not chunk:
                return
            while len(chunk) < chunk_size:  # a short read from a pipe or network file system
                more = self._read(file, chunk_size - len(chunk))
                if not more:
                    break
                chunk += more
            yield chunk

    def _raw_extents(self, fd: int, chunk_size: int, only: list[tuple[int, int]]) -> Iterator[bytes | bytearray]:
        size = os.fstat(fd).st_size
        zeros = bytes(chunk_size)
        index = 0
        for offset in range(0, size, chunk_size):
            end = min(offset + chunk_size, size)
            while index < len(only) and only[index][1] <= offset:
                index += 1
            parts = [(max(start, offset), min(stop, end)) for start, stop in only[index:] if start < end]
            if not parts:
                yield zeros if end - offset == chunk_size else bytes(end - offset)
                continue
            chunk = bytearray(end - offset)
            view = memoryview(chunk)
            for start, stop in parts:
                at = start
                while at < stop:
                    got = os.preadv(fd, [view[at - offset:stop - offset]], at)
                    if got == 0:
                        raise ImageCorrupt(self.path, at, "the raw image ends before its size (a file changing "
                                                          "while it is read)")
                    at += got
                self.compressed_read += stop - start
            yield chunk

    def _xz(self, file: BinaryIO) -> Iterator[bytes]:
        """Every stream of the file in turn (xz allows several, with zero padding between them)."""
        offset = 0
        pending = self._read(file, READ_SIZE)
        if not pending:
            raise ImageCorrupt(self.path, 0, "the .xz file is empty")
        while True:
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            while not decompressor.eof:
                if decompressor.needs_input and not pending:
                    pending = self._read(file, READ_SIZE)
                    if not pending:
                        raise ImageCorrupt(self.path, offset, "the .xz data ends before its end-of-stream marker "
                                                              "(truncated)")
                try:
                    piece = decompressor.decompress(pending, max_length=PIECE)
                except lzma.LZMAError as exc:
                    raise ImageCorrupt(self.path, offset, f"xz: {exc}") from exc
                pending = b""
                if piece:
                    offset += len(piece)
                    yield piece
            pending = decompressor.unused_data.lstrip(b"\0")
            while not pending:  # stream padding, then maybe another stream
                more = self._read(file, READ_SIZE)
                if not more:
                    return
                pending = more.lstrip(b"\0")

    def _zst(self, file: BinaryIO) -> Iterator[bytes]:
        """Each frame, fed to the decompressor one block at a time: at most 128 KiB out per call."""
        import zstandard  # imported here: only .zst images need the package

        reader = _Bytes(lambda size: self._read(file, size))
        offset = 0

        def need(size: int) -> bytes:
            data = reader.take(size)
            if len(data) < size:
                raise ImageCorrupt(self.path, offset, "the .zst data ends inside a frame (truncated)")
            return data

        while reader.more():
            magic = struct.unpack("<I", need(4))[0]
            if magic & 0xFFFFFFF0 == ZSTD_SKIPPABLE:
                need(struct.unpack("<I", need(4))[0])
                continue
            if magic != ZSTD_MAGIC:
                raise ImageCorrupt(self.path, offset, f"not a zstd frame (magic {magic:#010x})")
            descriptor = need(1)
            header = struct.pack("<I", magic) + descriptor + need(_zstd_header_rest(descriptor[0]))
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            try:
                decompressor.decompress(header)
                while True:
                    block_header = need(3)
                    word = int.from_bytes(block_header, "little")
                    last, kind, size = word & 1, (word >> 1) & 3, word >> 3
                    body = need(1 if kind == 1 else size)  # an RLE block carries one byte, repeated `size` times
                    piece = decompressor.decompress(block_header + body)
                    if piece:
                        offset += len(piece)
                        yield piece
                    if last:
                        break
                if descriptor[0] & 0x04:  # Content_Checksum_Flag: 4 bytes follow the last block
                    decompressor.decompress(need(4))
            except zstandard.ZstdError as exc:
                raise ImageCorrupt(self.path, offset, f"zstd: {exc}") from exc


def _zstd_header_rest(descriptor: int) -> int:
    """Bytes of a zstd frame header after its descriptor byte (window, dictionary id, content size)."""
    single_segment = descriptor >> 5 & 1
    fcs = _ZSTD_FCS_BYTES[descriptor >> 6]
    if fcs == 0 and single_segment:
        fcs = 1
    return (0 if single_segment else 1) + _ZSTD_DICT_ID_BYTES[descriptor & 3] + fcs


def _zstd_content_size(path: Path) -> int | None:
    """The decompressed size a lone zstd frame declares in its header (the `zstd` CLI writes it), else None."""
    import zstandard

    with path.open("rb") as file:
        head = file.read(18)
    try:
        size = zstandard.frame_content_size(head)
    except zstandard.ZstdError:
        return None
    if size < 0:
        return None
    # Only trusted when that frame spans the whole file: a multi-frame file declares each frame's size.
    return size if _single_frame(path) else None


def _single_frame(path: Path) -> bool:
    """Whether the file is one zstd frame: walk its blocks' headers (seeks only, no decompression)."""
    with path.open("rb") as file:
        head = file.read(5)
        if len(head) < 5:
            return False
        position = 5 + _zstd_header_rest(head[4])
        end = os.fstat(file.fileno()).st_size
        while position + 3 <= end:
            file.seek(position)
            word = int.from_bytes(file.read(3), "little")
            position += 3 + (1 if (word >> 1) & 3 == 1 else word >> 3)
            if word & 1:
                return position + (4 if head[4] & 0x04 else 0) == end
        return False


class _Bytes:
    """Takes exact byte counts from a reader that returns whatever it has (the zstd frame walker's input)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = b""
        self._at = 0

    def more(self) -> bool:
        if self._at < len(self._buffer):
            return True
        self._buffer, self._at = self._read(READ_SIZE), 0
        return bool(self._buffer)

    def take(self, size: int) -> bytes:
        available = len(self._buffer) - self._at
        if size <= available:
            self._at += size
            return self._buffer[self._at - size:self._at]
        parts = [self._buffer[self._at:]]
        needed = size - available
        self._buffer, self._at = b"", 0
        while needed > 0:
            data = self._read(max(needed, READ_SIZE))
            if not data:
                break
            if len(data) > needed:
                self._buffer, self._at = data, needed
                data = data[:needed]
            parts.append(data)
            needed -= len(data)
        return b"".join(parts)


def _rechunk(pieces: Iterator[bytes], chunk_size: int) -> Iterator[bytes]:
    """Pieces of any size regrouped as exact `chunk_size` chunks: one copy per chunk, none for a piece that fits."""
    parts: list[bytes] = []
    held = 0
    for piece in pieces:
        start = 0
        while len(piece) - start >= chunk_size - held:
            end = start + chunk_size - held
            if not parts and start == 0 and end == len(piece):
                yield piece
            else:
                parts.append(piece[start:end])
                yield b"".join(parts)
            parts, held, start = [], 0, end
        if start < len(piece):
            parts.append(piece[start:])
            held += len(piece) - start
    if parts:
        yield b"".join(parts)


def open_image(path: str | os.PathLike[str]) -> ImageSource:
    """The image at `path`, checked to exist: a missing image is the user's mistake (`ConfigError`)."""
    image = Path(path)
    if not image.is_file():
        raise ConfigError(f"image {image} does not exist (or is not a file)")
    return ImageSource(image)
