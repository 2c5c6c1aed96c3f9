"""Write an image to a target as fast as the medium allows, skip only what is known not to matter, then prove it.

Why three threads: decompressing (lzma/zstd), hashing (sha256) and writing (pwrite) each release
the GIL, so a producer decompresses, a hasher hashes and the caller's thread writes, all at once.
Bounded queues between them keep memory at a few chunks whatever the image's size.

What may be skipped, and why nothing else:

* ranges a `.bmap` marks unmapped: the image never held data there, the board never reads it;
* runs of zeros, only when the target is a fresh or truncated file: its unwritten ranges are holes
  and read as zeros, which is exactly what the image holds there.

On a reused medium (a card with last week's image, a reused file) a skipped zero run would keep
stale bytes (an old META partition), and a read-back of "what was written" would never see them:
so there every block is written, zeros included, or zeroed with `BLKZEROOUT` on a block device
(the device clears the range without the data crossing the bus, when it can).

Verify (on by default) runs after fsync: the target's page cache is dropped (POSIX_FADV_DONTNEED)
so the read-back reads the medium, not the memory the writes went through; what was written (all
but bmap-unmapped ranges) is hashed and compared; on a mismatch the image is streamed again to
name the first bad byte.

A target that fails mid-write (a card pulled: ENODEV, EIO) raises `BenchError` at once: the
threads are told to stop and every wait has a timeout, so nothing hangs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import queue
import stat
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import BenchError, ConfigError
from harness.flash.bmap import Bmap, bmap_beside, parse_bmap
from harness.flash.image import ImageCorrupt, ImageSource, open_image
from harness.flash.progress import Progress
from harness.steps import StepRecorder

MIB = 1 << 20
CHUNK = 4 * MIB  # large enough that syscall and thread hand-off costs vanish, small enough to bound memory
QUEUE_DEPTH = 4  # chunks waiting between two threads
BLOCK = 4096  # zero runs are found at this granularity (a filesystem block; bmaptool's default)
MIN_ZERO_RUN = 256 * 1024  # shorter zero runs are written as data: splitting a write costs more than it saves
# <linux/fs.h>: #define BLKZEROOUT _IO(0x12, 127): _IO(type, nr) = type << 8 | nr; argument uint64_t[2] = {start, len}
BLKZEROOUT = 0x12 << 8 | 127
VANISHED = frozenset({errno.ENODEV, errno.ENXIO, errno.EIO, errno.ENOMEDIUM, errno.ESHUTDOWN})
# sync_file_range(2) flags (<linux/fs.h>): start writeback of a range; wait for writeback before / after.
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
WRITE_BEHIND_CHUNKS = 32  # dirty data allowed ahead of the medium: 128 MiB with 4 MiB chunks (8 measured slower)
_POLL_S = 0.1  # every queue wait wakes this often to see whether another thread gave up
_ZEROS = bytes(CHUNK)
_ZEROS_1M = bytes(MIB)
_ZEROS_64K = bytes(64 * 1024)
_ZEROS_BLOCK = bytes(BLOCK)
_DONE = object()

ZeroPolicy = Literal["hole", "zeroout", "write"]


def _libc_sync_file_range() -> ctypes._CFuncPtr | None:
    """glibc's sync_file_range (the os module has none), or None where it is missing: then no write-behind."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _libc_sync_file_range()


class VerifyMismatch(BenchError):
    """What the target reads back differs from the image: the medium (or its reader) lost a write."""

    def __init__(self, target: Path, offset: int, detail: str) -> None:
        self.target = target
        self.offset = offset
        super().__init__(f"verify: target {target} differs from the image at offset {offset}: {detail}")


class Target:
    """An opened flash target: a regular file or a block device node (judged safe by the caller).

    `fresh` says the file was empty when opened (created or truncated): its unwritten ranges are
    holes reading as zeros, so zero runs may be skipped. `direct` adds an O_DIRECT descriptor for
    aligned writes (no page-cache copy); unaligned pieces go through the buffered one.
    """

    def __init__(self, path: Path, fd: int, *, block_device: bool, fresh: bool, direct_fd: int | None = None) -> None:
        self.path = path
        self.fd = fd
        self.block_device = block_device
        self.fresh = fresh
        self.direct_fd = direct_fd
        self.size: int | None = os.lseek(fd, 0, os.SEEK_END) if block_device else None
        self._aligned = mmap.mmap(-1, CHUNK) if direct_fd is not None else None  # page-aligned: O_DIRECT needs it

    @property
    def zero_policy(self) -> ZeroPolicy:
        return "hole" if self.fresh else "zeroout" if self.block_device else "write"

    def _failed(self, action: str, offset: int, exc: OSError) -> BenchError:
        why = "vanished or failed" if exc.errno in VANISHED else "failed"
        return BenchError(f"target {self.path} {why} while {action} at offset {offset}: {exc.strerror or exc}")

    def write(self, offset: int, data: memoryview | bytes) -> None:
        """Write all of `data` at `offset` (pwrite may write less than asked: loop)."""
        view = memoryview(data)
        fd = self.fd
        if self._aligned is not None and self.direct_fd is not None and offset % BLOCK == 0 \
                and len(view) % BLOCK == 0 and len(view) <= CHUNK:
            self._aligned[:len(view)] = view
            view, fd = memoryview(self._aligned)[:len(view)], self.direct_fd
        done = 0
        try:
            while done < len(view):
                written = os.pwrite(fd, view[done:], offset + done)
                if written == 0:
                    raise OSError(errno.ENOSPC, "no space left: the target is smaller than the image")
                done += written
        except OSError as exc:
            raise self._failed("writing", offset + done, exc) from exc

    def zero(self, offset: int, length: int) -> None:
        """Make `length` bytes at `offset` read as zeros: BLKZEROOUT on a block device, else written zeros."""
        if self.block_device and offset % 512 == 0 and length % 512 == 0:
            try:
                fcntl.ioctl(self.fd, BLKZEROOUT, struct.pack("QQ", offset, length))
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTTY):
                    raise self._failed("zeroing", offset, exc) from exc
        while length:
            size = min(length, CHUNK)
            self.write(offset, _ZEROS[:size])
            offset += size
            length -= size

    def write_behind(self, offset: int, length: int, settled: int) -> None:
        """Start writing `offset`..+`length` to the medium now, and wait until everything before `settled` is on it.

        Why: without it the kernel keeps the whole image dirty in memory (below its writeback threshold),
        the progress line reaches 100% at memory speed and the final fsync then waits the real time; and
        the disk idles while the pipeline works. Async writeback overlaps the two and bounds dirty memory.
        """
        if _sync_file_range is None:
            return
        _sync_file_range(self.fd, ctypes.c_int64(offset), ctypes.c_int64(length), SYNC_FILE_RANGE_WRITE)
        if settled > 0:
            flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
            if _sync_file_range(self.fd, ctypes.c_int64(0), ctypes.c_int64(settled), flags) != 0:
                error = ctypes.get_errno()
                raise self._failed("writing back", 0, OSError(error, os.strerror(error)))

    def read(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            raise self._failed("reading back", offset, exc) from exc

    def finish(self, size: int) -> None:
        """A fresh file gets the image's length even if it ends in a skipped run (trailing holes)."""
        if not self.block_device and os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)

    def sync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise self._failed("syncing", 0, exc) from exc

    def drop_cache(self) -> None:
        """Forget the target's cached pages (written back by `sync` first), so a read-back reads the medium."""
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        for fd in (self.direct_fd, self.fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._aligned is not None:
            self._aligned.close()


def open_target(path: str | os.PathLike[str], *, reuse: bool = False, direct: bool = False) -> Target:
    """Open a file or block device node to flash. A file is truncated (fresh: zero runs become holes)
    unless `reuse`, which keeps its bytes, like a card that held another image. A block device is
    opened O_EXCL: the kernel refuses it while a partition is mounted or the device is held.
    """
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    block = mode is not None and stat.S_ISBLK(mode)
    if mode is not None and not block and not stat.S_ISREG(mode):
        raise ConfigError(f"flash target {target} is neither a regular file nor a block device")
    flags = os.O_RDWR | os.O_CLOEXEC
    if block:
        flags |= os.O_EXCL
    elif not reuse:
        flags |= os.O_CREAT | os.O_TRUNC
    else:
        flags |= os.O_CREAT
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise BenchError(f"cannot open flash target {target}: {exc.strerror or exc}") from exc
    fresh = not block and os.fstat(fd).st_size == 0
    direct_fd = None
    if direct:
        try:
            direct_fd = os.open(target, (flags & ~(os.O_TRUNC | os.O_EXCL)) | os.O_DIRECT)
        except OSError:  # a file system without O_DIRECT (tmpfs): the buffered descriptor does it all
            direct_fd = None
    return Target(target, fd, block_device=block, fresh=fresh, direct_fd=direct_fd)


@dataclass(frozen=True)
class FlashSummary:
    """What a flash did, for the report: the image's identity, what was written or skipped, how fast, verified."""

    image: str
    target: str
    sha256: str | None  # of the decompressed image; None when a checksummed .bmap stood in for it (see identity)
    image_size: int  # decompressed bytes
    bytes_written: int  # data written with write calls (zeros included on a reused medium)
    bytes_zeroed: int  # cleared with BLKZEROOUT
    bytes_skipped: int  # left alone: bmap-unmapped ranges, zero runs on a fresh file
    seconds: float  # from the first byte read to fsync done
    verified: bool | None  # None: verify was off
    verify_seconds: float
    peak_chunks: int  # most chunks alive between the threads at once: the memory bound, measured
    bmap_sha256: str | None = None  # sha256 of the bmap's size and range checksums, when one was used

    @property
    def identity(self) -> str:
        """What the medium now holds, for "is this image already there?": the image's sha256, else the bmap's."""
        return f"sha256:{self.sha256}" if self.sha256 else f"bmap-sha256:{self.bmap_sha256}"

    @property
    def mb_per_s(self) -> float:
        """Image bytes (not bytes written) per second: what the user waits for, comparable with dd."""
        return self.image_size / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def line(self) -> str:
        verdict = "not verified" if self.verified is None else f"verified in {self.verify_seconds:.1f} s"
        return (f"{self.image_size / 1e6:,.1f} MB in {self.seconds:.1f} s ({self.mb_per_s:,.1f} MB/s): "
                f"{self.bytes_written / 1e6:,.1f} MB written, {self.bytes_zeroed / 1e6:,.1f} MB zeroed, "
                f"{self.bytes_skipped / 1e6:,.1f} MB skipped; {self.identity}; {verdict}")


def _zero_end(chunk: bytes | bytearray, at: int, end: int) -> int:
    """Where the zeros from `at` stop, in whole blocks (or `end` if only a partial block of zeros is left).

    `bytes.startswith(zeros, at)` is a memcmp in place: slicing would copy, and comparing memoryviews
    goes item by item (about 300 MB/s, slower than the medium).
    """
    for zeros in (_ZEROS_1M, _ZEROS_64K, _ZEROS_BLOCK):
        step = len(zeros)
        while at + step <= end and chunk.startswith(zeros, at):
            at += step
    if 0 < end - at < BLOCK and chunk.startswith(_ZEROS_BLOCK[:end - at], at):
        at = end
    return at


def _runs(chunk: bytes | bytearray, start: int, end: int, policy: ZeroPolicy) -> Iterator[tuple[bool, int, int]]:
    """(is_zero, start, end) runs of `chunk[start:end]`, offsets in `chunk`; zero runs are whole blocks
    from `start` and at least MIN_ZERO_RUN long (shorter ones are written as data).

    `bytes.find` of a zero block skips through dense data at memory speed (~15 GB/s), so an image
    with nothing to skip pays a fraction of a millisecond per 4 MiB chunk here.
    """
    if policy == "write" or end - start < MIN_ZERO_RUN:
        yield False, start, end
        return
    data_start = position = start
    while position < end:
        hit = chunk.find(_ZEROS_BLOCK, position, end)
        if hit < 0:
            break
        run_start = start + -(-(hit - start) // BLOCK) * BLOCK
        run_end = _zero_end(chunk, run_start, end)
        if run_end - run_start >= MIN_ZERO_RUN:
            if run_start > data_start:
                yield False, data_start, run_start
            yield True, run_start, run_end
            data_start = run_end
        position = max(run_end, hit + 1)
    if data_start < end:
        yield False, data_start, end


class _Pipeline:
    """The producer and hasher threads and the queues between them and the writing thread."""

    def __init__(self, source: ImageSource, chunk_size: int, depth: int, bmap: Bmap | None, full_hash: bool) -> None:
        self.source = source
        self.full_hash = full_hash
        self.chunk_size = chunk_size
        self.bmap = bmap
        self.stop = threading.Event()
        self.to_write: queue.Queue[object] = queue.Queue(depth)
        self.to_hash: queue.Queue[object] = queue.Queue(depth)
        self.error: BaseException | None = None
        self.digest = hashlib.sha256()
        self.produced = self.written = self.hashed = 0
        self.peak = 0
        self._threads = [threading.Thread(target=self._produce, name="flash-decompress", daemon=True),
                         threading.Thread(target=self._hash, name="flash-hash", daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _put(self, target: queue.Queue[object], item: object) -> bool:
        while not self.stop.is_set():
            try:
                target.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop.set()

    def _produce(self) -> None:
        try:
            only = None if self.full_hash or self.bmap is None else [(s, e) for s, e, _ in self.bmap.extents()]
            for chunk in self.source.chunks(self.chunk_size, only):
                self.produced += 1
                self.peak = max(self.peak, self.produced - min(self.written, self.hashed))
                if not (self._put(self.to_hash, chunk) and self._put(self.to_write, chunk)):
                    return
        except BaseException as exc:
            self._fail(exc)
            return
        self._put(self.to_hash, _DONE)
        self._put(self.to_write, _DONE)

    def _hash(self) -> None:
        """The whole image's sha256, and each bmap range's checksum as its last byte passes."""
        checks = [(start, end, r.checksum) for start, end, r in self.bmap.extents() if r.checksum] if self.bmap else []
        kind = self.bmap.checksum_type if self.bmap else None
        index, current, offset = 0, None, 0
        try:
            for chunk in self.items(self.to_hash):
                if self.full_hash:
                    self.digest.update(chunk)
                end_of_chunk = offset + len(chunk)
                while index < len(checks) and checks[index][0] < end_of_chunk:
                    start, end, expected = checks[index]
                    if current is None:
                        current = hashlib.new(kind or "sha256")
                    current.update(memoryview(chunk)[max(start - offset, 0):min(end, end_of_chunk) - offset])
                    if end > end_of_chunk:
                        break
                    if current.hexdigest() != expected:
                        raise ImageCorrupt(self.source.path, start, f"bytes {start}-{end - 1} do not match the "
                                                                    f"{kind} the .bmap gives for them")
                    index, current = index + 1, None
                offset = end_of_chunk
                self.hashed += 1
        except BaseException as exc:
            self._fail(exc)

    def items(self, source: queue.Queue[object]) -> Iterator[bytes | bytearray]:
        """Chunks from `source` until the producer's end; stops early (returns) when a thread gave up."""
        while True:
            try:
                item = source.get(timeout=_POLL_S)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            assert isinstance(item, bytes | bytearray)
            yield item

    def finish(self) -> None:
        """After the writer saw the end: wait for the hasher to hash the chunks still queued (it has the end too)."""
        for thread in self._threads:
            thread.join()

    def close(self) -> None:
        """Give up: tell the threads to stop; each wait in them wakes within _POLL_S to see it."""
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=5)


def _resolve_bmap(image: Path, bmap: Bmap | Path | str | None) -> Bmap | None:
    if isinstance(bmap, Bmap) or bmap is None:
        return bmap
    if bmap == "auto":
        beside = bmap_beside(image)
        return parse_bmap(beside) if beside else None
    path = Path(bmap)
    if not path.is_file():
        raise ConfigError(f"bmap {path} does not exist")
    return parse_bmap(path)


def write_image(image: ImageSource | str | os.PathLike[str], target: Target | str | os.PathLike[str], *,
                bmap: Bmap | Path | str | None = "auto", verify: bool = True, chunk_size: int = CHUNK,
                queue_depth: int = QUEUE_DEPTH, progress: Progress | None = None,
                steps: StepRecorder | None = None, image_sha256: bool | None = None) -> FlashSummary:
    """Flash `image` to `target` (an opened `Target`, or a path opened with `open_target` and closed after).

    `bmap`: "auto" uses the `.bmap` beside the image if there is one; None ignores it.
    `image_sha256`: hash the whole decompressed image. None (the default) does unless a `.bmap` has a
    checksum on every range: those already prove the image's data, and hashing a gigabyte of zeros
    (and, for a raw image, reading them) would cost more CPU than writing the data. With `steps`,
    the flash is recorded as a step `flash` whose arguments gain the byte counts and sha256.
    Raises `ImageCorrupt` (the image), `BenchError` (the target; `VerifyMismatch` on read-back),
    `ConfigError` (a missing image or bad bmap).
    """
    source = image if isinstance(image, ImageSource) else open_image(image)
    if chunk_size <= 0 or chunk_size % BLOCK or chunk_size > CHUNK:
        raise ValueError(f"chunk size {chunk_size} must be a multiple of {BLOCK} up to {CHUNK}")
    opened = target if isinstance(target, Target) else open_target(target)
    try:
        if steps is None:
            return _flash(source, opened, _resolve_bmap(source.path, bmap), verify, chunk_size, queue_depth,
                          progress, image_sha256)
        with steps.step("flash", image=str(source.path), target=str(opened.path)) as step:
            summary = _flash(source, opened, _resolve_bmap(source.path, bmap), verify, chunk_size, queue_depth,
                             progress, image_sha256)
            step.args.update(bytes=summary.image_size, written=summary.bytes_written,
                             skipped=summary.bytes_skipped, zeroed=summary.bytes_zeroed, sha256=summary.sha256,
                             identity=summary.identity, verified=summary.verified)
            step.detail = f"{summary.mb_per_s:,.1f} MB/s" + (", verified" if summary.verified else "")
            return summary
    finally:
        if opened is not target:
            opened.close()


def _flash(source: ImageSource, target: Target, bmap: Bmap | None, verify: bool, chunk_size: int,
           depth: int, progress: Progress | None, image_sha256: bool | None) -> FlashSummary:
    expected_size = bmap.image_size if bmap else source.size
    if target.size is not None and expected_size is not None and expected_size > target.size:
        raise BenchError(f"image {source.path} ({expected_size} bytes) does not fit on target {target.path} "
                         f"({target.size} bytes); nothing was written")
    policy = target.zero_policy
    written = zeroed = skipped = offset = 0
    # What verify compares the read-back with: the image's sha256 without a bmap (all of it is written), the bmap's
    # own range checksums (checked against the image as it streams), else a hash of the mapped bytes made here.
    unchecked = bmap is not None and not all(r.checksum for r in bmap.ranges)
    written_digest = hashlib.sha256() if unchecked else None
    cursor = [0]
    extents = [(start, end) for start, end, _ in bmap.extents()] if bmap else None
    started = time.monotonic()
    checked = bmap is not None and all(r.checksum for r in bmap.ranges)
    full_hash = image_sha256 if image_sha256 is not None else not checked
    if bmap is None and not full_hash:
        raise ValueError("without a .bmap the image's sha256 is what verify and the summary rest on")
    pipeline = _Pipeline(source, chunk_size, depth, bmap, full_hash)
    pipeline.start()
    try:
        for chunk in pipeline.items(pipeline.to_write):
            view = memoryview(chunk)
            end = offset + len(chunk)
            if bmap is not None and end > bmap.image_size:
                raise ImageCorrupt(source.path, bmap.image_size, f"the image is longer than the {bmap.image_size} "
                                                                 f"bytes its .bmap gives")
            covered = 0
            for start, stop in _mapped(extents, offset, end, cursor):
                covered += stop - start
                if written_digest is not None:
                    written_digest.update(view[start - offset:stop - offset])
                for zero, a, b in _runs(chunk, start - offset, stop - offset, policy):
                    if not zero:
                        target.write(offset + a, view[a:b])
                        written += b - a
                    elif policy == "zeroout":
                        target.zero(offset + a, b - a)
                        zeroed += b - a
                    else:
                        skipped += b - a
            skipped += len(chunk) - covered
            target.write_behind(offset, len(chunk), offset - WRITE_BEHIND_CHUNKS * chunk_size)
            offset = end
            pipeline.written += 1
            if progress is not None:
                known = expected_size or 0  # decompressed size if known, else the compressed bytes read
                fraction = offset / known if known else source.compressed_read / max(source.compressed_size, 1)
                progress.update(offset, fraction)
        if pipeline.error is None:
            pipeline.finish()
        pipeline.close()
        if pipeline.error is not None:
            raise pipeline.error
        if bmap is not None and offset != bmap.image_size:
            raise ImageCorrupt(source.path, offset, f"the image ends before the {bmap.image_size} bytes its .bmap "
                                                    f"gives")
        target.finish(offset)
        target.sync()
    except BaseException as exc:
        pipeline.close()
        if progress is not None:
            progress.finish(f"failed: {exc}")
        if isinstance(exc, ImageCorrupt):
            raise ImageCorrupt(exc.path, exc.offset, f"{exc.reason}; target {target.path} holds the image's bytes "
                                                     f"before offset {offset} over what it held before: not a usable "
                                                     "medium until flashed again") from exc
        raise
    seconds = time.monotonic() - started
    sha256 = pipeline.digest.hexdigest() if full_hash else None
    verified: bool | None = None
    verify_started = time.monotonic()
    if verify:
        if bmap is None:
            groups = [([(0, offset)], "sha256", pipeline.digest.hexdigest())]
        elif written_digest is not None:
            groups = [([(start, end) for start, end, _ in bmap.extents()], "sha256", written_digest.hexdigest())]
        else:
            groups = [([(start, end)], bmap.checksum_type or "sha256", r.checksum or "")
                      for start, end, r in bmap.extents()]
        _verify(source, target, groups, chunk_size)
        verified = True
    summary = FlashSummary(str(source.path), str(target.path), sha256, offset, written, zeroed, skipped, seconds,
                           verified, time.monotonic() - verify_started if verify else 0.0, pipeline.peak,
                           _bmap_identity(bmap) if bmap is not None else None)
    if progress is not None:
        progress.finish(summary.line())
    return summary


def _bmap_identity(bmap: Bmap) -> str:
    """A sha256 naming the image as its bmap describes it: size, block size, each range and its checksum."""
    text = f"{bmap.image_size} {bmap.block_size} {bmap.checksum_type}\n" + "".join(
        f"{r.first}-{r.last} {r.checksum}\n" for r in bmap.ranges)
    return hashlib.sha256(text.encode()).hexdigest()


def _verify(source: ImageSource, target: Target, groups: list[tuple[list[tuple[int, int]], str, str]],
            chunk_size: int) -> None:
    """Read back each group of extents from the medium (page cache dropped) and compare its hash
    (`algorithm`, hex `expected`) with what was written; on a mismatch, name the first bad byte."""
    target.drop_cache()
    extents = [extent for group, _, _ in groups for extent in group]
    for group, algorithm, expected in groups:
        digest = hashlib.new(algorithm)
        for start, end in group:
            for at in range(start, end, chunk_size):
                data = target.read(at, min(chunk_size, end - at))
                if len(data) < min(chunk_size, end - at):
                    raise VerifyMismatch(target.path, at + len(data), "the target ends there")
                digest.update(data)
        if digest.hexdigest() != expected:
            break
    else:
        return
    # Find the first bad byte: stream the image again and compare it with the target, extent by extent.
    offset = 0
    cursor = [0]
    for chunk in source.chunks(chunk_size):
        end = offset + len(chunk)
        for start, stop in _mapped(extents, offset, end, cursor):
            wanted = chunk[start - offset:stop - offset]
            got = target.read(start, stop - start)
            if got != wanted:
                first = next(i for i in range(len(wanted)) if i >= len(got) or got[i] != wanted[i])
                found = f"{got[first]:#04x}" if first < len(got) else "nothing"
                raise VerifyMismatch(target.path, start + first, f"image byte {wanted[first]:#04x}, read back {found}")
        offset = end
    raise VerifyMismatch(target.path, group[0][0], f"the read-back hashes to {digest.hexdigest()}, not {expected}, "
                                                   "yet every byte compared equal on a second read (an unstable "
                                                   "medium)")


def _mapped(extents: list[tuple[int, int]] | None, start: int, end: int, cursor: list[int]) -> list[tuple[int, int]]:
    """The parts of [start, end) inside `extents` (all of it when None); `cursor` carries the index forward."""
    if extents is None:
        return [(start, end)]
    while cursor[0] < len(extents) and extents[cursor[0]][1] <= start:
        cursor[0] += 1
    parts = []
    index = cursor[0]
    while index < len(extents) and extents[index][0] < end:
        parts.append((max(start, extents[index][0]), min(end, extents[index][1])))
        index += 1
    return parts
