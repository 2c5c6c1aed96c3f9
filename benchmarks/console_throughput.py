#!/usr/bin/env python3
"""Benchmark the console engine (harness/console) under a sustained 1.5 Mbaud stream.

Why this exists: the harness's Console keeps one reader thread draining the serial port for the
whole session, writes every chunk to three log files and appends it to an ExpectBuffer that the
test thread searches. Rockchip boards print at 1500000 baud, i.e. up to 150,000 bytes/s, and a
verbose kernel can keep that up for a while. If the reader falls behind, a real UART's FIFO
overruns and bytes are silently lost, and a gate can time out (or match late) for reasons that
have nothing to do with the board. This script shows, with numbers, that the engine keeps up
with that rate without losing a byte, how late `expect` returns after a marker's last byte was
written, what the reader costs in CPU, and that `expect` stays cheap as the buffer grows.

Modes:

* ``throughput`` (default): a pty stands in for the UART. A separate process (this script run
  with ``--mode feed``) writes sequence-numbered lines to the pty master at the target rate
  (paced bursts, every 10 ms) plus a ``MARK <n> <monotonic_ns>`` line about every 100 ms. The
  main process opens a Console on the pty slave at 1500000 baud and loops ``Console.expect`` on
  the marker. At the end the raw log (console.raw) is checked byte for byte (SHA-256) and line by
  line against what the feeder wrote. A pty does not overrun: when the reader falls behind, the
  feeder's write() blocks instead, so the achieved rate is measured and must be >= 95 % of the
  target.
* ``expect-scaling``: uses ExpectBuffer directly, appends 50 MB of console-like text in ~4 KB
  chunks and times ``expect`` at every 5 MB: (a) typical use, earlier text consumed by earlier
  matches; (b) nothing ever consumed, a long-running ``expect`` woken by every arriving chunk
  (its per-wakeup cost), and, for honesty, a fresh ``expect(timeout=0)`` that has to search all
  the unconsumed text.

Needs the project installed (``pip install -e .``); ``--help`` works without it. Linux only
(os.openpty, CLOCK_MONOTONIC shared between processes, per-thread CPU clocks, /proc).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from harness.console.buffer import ExpectBuffer

MB = 1_000_000  # figures are in decimal megabytes (10^6 bytes or characters)
LINE_LEN = 100  # every sequence line is exactly this many bytes, newline included
_PAD = ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+.:" * 4)
MARK_RE = r"^MARK (\d+) (\d+)\n"


# -- shared helpers ---------------------------------------------------------------------------
def seq_line(n: int) -> bytes:
    """Sequence line `n`: 'seq 00001234 ' + padding that depends on n + newline, LINE_LEN bytes."""
    head = f"seq {n:08d} "
    offset = n % 64
    return (head + _PAD[offset: offset + LINE_LEN - 1 - len(head)] + "\n").encode()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_now_mb() -> float:
    """Current resident set size of this process, from /proc/self/statm."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb() -> float:
    """Peak RSS of this process (ru_maxrss is in KiB on Linux); the feeder process is not included."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def thread_cpu_s(thread: threading.Thread) -> float:
    """CPU time (user+system) consumed so far by another thread of this process."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_info() -> str:
    affinity = len(os.sched_getaffinity(0))
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"nproc {affinity} ({model}); Linux {platform.release()}; "
            f"Python {platform.python_version()}")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- feeder (runs in its own process) ------------------------------------------------------------
def feed(fd: int, seconds: float, rate: int, tick_ms: float, mark_ms: float, report: Path) -> None:
    """Write paced sequence lines and markers to `fd`, then a JSON report of what was written."""
    tick_ns = int(tick_ms * 1e6)
    mark_ns = int(mark_ms * 1e6)
    lines_per_tick = max(1, round(rate * tick_ms / 1000 / LINE_LEN))
    digest = hashlib.sha256()
    seq = 0
    total = seq_bytes = 0
    late_ticks = 0
    max_write_ns = 0
    marks: list[tuple[int, int, int]] = []  # (n, stamp written in the line, write() returned)
    start = time.monotonic_ns()
    end = start + int(seconds * 1e9)
    next_tick = start
    next_mark = start + mark_ns
    last_write_end = start
    while next_tick < end:
        now = time.monotonic_ns()
        if now < next_tick:
            time.sleep((next_tick - now) / 1e9)
        elif now - next_tick > tick_ns:
            late_ticks += 1  # more than a whole tick behind schedule: the previous write blocked
        data = b"".join(seq_line(seq + i) for i in range(lines_per_tick))
        seq += lines_per_tick
        before = time.monotonic_ns()
        write_all(fd, data)
        last_write_end = time.monotonic_ns()
        max_write_ns = max(max_write_ns, last_write_end - before)
        digest.update(data)
        total += len(data)
        seq_bytes += len(data)
        if last_write_end >= next_mark:
            stamp = time.monotonic_ns()
            line = f"MARK {len(marks)} {stamp}\n".encode()
            write_all(fd, line)
            returned = time.monotonic_ns()
            max_write_ns = max(max_write_ns, returned - stamp)
            last_write_end = returned
            marks.append((len(marks), stamp, returned))
            digest.update(line)
            total += len(line)
            next_mark += mark_ns
        next_tick += tick_ns
    # The schedule covers `seconds`; if the writes blocked, the last one returns later than that.
    elapsed_ns = max(end - start, last_write_end - start)
    report.write_text(json.dumps({
        "total_bytes": total, "seq_bytes": seq_bytes, "seq_lines": seq,
        "lines_per_tick": lines_per_tick, "elapsed_s": elapsed_ns / 1e9,
        "target_rate": lines_per_tick * LINE_LEN / (tick_ms / 1000),
        "late_ticks": late_ticks, "max_write_ms": max_write_ns / 1e6,
        "sha256": digest.hexdigest(), "marks": marks,
    }))


# -- throughput mode ------------------------------------------------------------------------------
@dataclass
class LogCheck:
    size: int = 0
    sha256: str = ""
    seq_seen: int = 0
    seq_missing: int = 0
    seq_duplicate: int = 0
    seq_out_of_order: int = 0
    seq_corrupt: int = 0
    marks_seen: int = 0
    other_lines: int = 0
    chunks: list[int] = field(default_factory=list)


def check_raw_log(raw_path: Path, expected_lines: int) -> LogCheck:
    """Every sequence number present once, in order, byte-exact; plus the reader's chunk sizes."""
    data = raw_path.read_bytes()
    check = LogCheck(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    lines = data.split(b"\n")
    seen = bytearray(expected_lines)
    previous = -1
    for line in lines[:-1]:
        if line.startswith(b"seq "):
            try:
                n = int(line[4:12])
            except ValueError:
                check.seq_corrupt += 1
                continue
            if not 0 <= n < expected_lines or line + b"\n" != seq_line(n):
                check.seq_corrupt += 1
                continue
            if seen[n]:
                check.seq_duplicate += 1
            seen[n] = 1
            if n != previous + 1:
                check.seq_out_of_order += 1
            previous = n
            check.seq_seen += 1
        elif line.startswith(b"MARK "):
            check.marks_seen += 1
        else:
            check.other_lines += 1
    check.seq_missing = expected_lines - sum(seen)
    # console.raw.idx: one row per chunk the reader got from the port (byte offset, seconds).
    offsets = []
    idx_path = raw_path.with_name(raw_path.name + ".idx")
    for row in idx_path.read_text().splitlines():
        if row and not row.startswith("#"):
            offsets.append(int(row.split("\t")[0]))
    check.chunks = [b - a for a, b in zip(offsets, [*offsets[1:], len(data)], strict=True)]
    return check


def run_throughput(args: argparse.Namespace) -> int:
    from harness.console.console import Console
    from harness.errors import ConsoleTimeout

    print(f"machine: {machine_info()}")
    print(f"throughput: {args.seconds:g} s at a target of {args.rate:,} bytes/s into a pty, "
          f"Console at {args.baud} baud, marker every {args.mark_ms:g} ms")
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.log_dir:
        log_dir = Path(args.log_dir)
        if (log_dir / "console.raw").exists():
            raise SystemExit(f"{log_dir / 'console.raw'} exists; the check needs a fresh log (pick another dir)")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="console-bench-")
        log_dir = Path(tmp.name)
    report_path = log_dir / "feeder.json"
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    console = Console(slave_path, args.baud, log_dir)
    console.open()  # pyserial puts the slave in raw mode (no echo, no CR/LF mapping, no IXON)
    os.close(slave)
    reader = console._reader
    assert reader is not None
    reader_cpu0 = thread_cpu_s(reader)
    process_cpu0 = process_cpu_s()
    main_cpu0 = time.thread_time()
    feeder = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--mode", "feed", "--fd", str(master),
         "--seconds", str(args.seconds), "--rate", str(args.rate), "--tick-ms", str(args.tick_ms),
         "--mark-ms", str(args.mark_ms), "--report", str(report_path)],
        pass_fds=(master,))

    # (marker n, stamp in line, Match.arrived in ns, expect returned in ns)
    matched: list[tuple[int, int, int, int]] = []
    report: dict[str, Any] | None = None
    drained = False
    while True:
        try:
            m = console.expect(MARK_RE, timeout=0.5)
        except ConsoleTimeout:
            if report is None and feeder.poll() is not None:
                if feeder.returncode != 0:
                    print(f"FAIL: the feeder exited with {feeder.returncode}")
                    console.close()
                    return 2
                report = json.loads(report_path.read_text())
                deadline = time.monotonic() + 10
                while console.bytes_received < report["total_bytes"] and time.monotonic() < deadline:
                    time.sleep(0.01)
                drained = console.bytes_received >= report["total_bytes"]
                continue  # one more pass picks up markers that came in while draining
            if report is not None:
                break
            continue
        returned = time.monotonic_ns()
        matched.append((int(m.groups[0] or -1), int(m.groups[1] or -1), int(m.arrived * 1e9), returned))
    assert report is not None
    main_cpu = time.thread_time() - main_cpu0
    reader_cpu = thread_cpu_s(reader) - reader_cpu0  # sampled just before close, reader still alive
    process_cpu = process_cpu_s() - process_cpu0
    received = console.bytes_received
    console.close()
    os.close(master)
    streaming_peak_rss = peak_rss_mb()  # before the log check, which reads the whole raw log
    check = check_raw_log(console.log.raw_path, report["seq_lines"])

    written = report["total_bytes"]
    lost = written - received
    achieved = report["seq_bytes"] / report["elapsed_s"]
    target = report["target_rate"]
    returned_at = {n: returned for n, _stamp, returned in report["marks"]}
    latencies = [(ret - returned_at[n]) / 1e6 for n, _s, _a, ret in matched if n in returned_at]
    reader_lat = [(arr - returned_at[n]) / 1e6 for n, _s, arr, _r in matched if n in returned_at]
    mark_order_ok = [n for n, *_ in matched] == list(range(len(matched)))

    chunks = check.chunks
    print("\n-- data --")
    print(f"bytes written (feeder)      {written:,}")
    print(f"bytes received (Console)    {received:,}  (raw log {check.size:,})")
    print(f"bytes lost                  {lost:,}")
    print(f"raw log SHA-256 == written  {check.sha256 == report['sha256']}")
    print(f"sequence lines              {report['seq_lines']:,} written, {check.seq_seen:,} in log; "
          f"missing {check.seq_missing}, duplicate {check.seq_duplicate}, "
          f"out of order {check.seq_out_of_order}, corrupt {check.seq_corrupt}, other lines {check.other_lines}")
    print(f"markers                     {len(report['marks'])} written, {check.marks_seen} in log, "
          f"{len(matched)} matched by expect, in order: {mark_order_ok}")
    print(f"drained after feeder exit   {drained}")
    print("\n-- rate --")
    print(f"target rate                 {target:,.0f} bytes/s (sequence lines; markers add "
          f"{(written - report['seq_bytes']) / report['elapsed_s']:,.0f} bytes/s)")
    print(f"achieved rate               {achieved:,.0f} bytes/s = {achieved / target:.1%} of target "
          f"over {report['elapsed_s']:.2f} s")
    print(f"feeder late ticks           {report['late_ticks']} (> 1 tick behind schedule); "
          f"longest write() {report['max_write_ms']:.2f} ms")
    print("\n-- latency (marker's write() returned in the feeder -> ...) --")
    if latencies:
        print(f"... expect returned         median {statistics.median(latencies):.3f} ms, "
              f"p99 {percentile(latencies, 99):.3f} ms, max {max(latencies):.3f} ms (n={len(latencies)})")
        print(f"... reader got the chunk    median {statistics.median(reader_lat):.3f} ms, "
              f"p99 {percentile(reader_lat, 99):.3f} ms, max {max(reader_lat):.3f} ms (Match.arrived)")
    print("\n-- cost --")
    mb = received / MB
    print(f"reader thread CPU           {reader_cpu:.3f} s = {reader_cpu * 1000 / mb:.1f} ms per MB "
          f"(CLOCK_THREAD_CPUTIME of console-reader: port read, clean, 3 log files, buffer append)")
    print(f"main thread CPU             {main_cpu:.3f} s = {main_cpu * 1000 / mb:.1f} ms per MB "
          f"(the Console.expect loop)")
    print(f"whole process CPU           {process_cpu:.3f} s = {process_cpu * 1000 / mb:.1f} ms per MB "
          f"(getrusage, feeder process excluded)")
    print(f"reader chunks               {len(chunks):,}, mean {statistics.mean(chunks):,.0f} B, "
          f"median {statistics.median(chunks):,.0f} B, max {max(chunks):,} B, "
          f"1-byte chunks {sum(1 for c in chunks if c == 1):,}")
    print(f"peak RSS                    {streaming_peak_rss:.1f} MB while streaming, {peak_rss_mb():.1f} MB "
          "after the log check (this process; ru_maxrss)")

    failures = []
    if lost != 0 or check.size != written or check.sha256 != report["sha256"]:
        failures.append(f"{lost} bytes lost / raw log differs from what was written")
    if check.seq_missing or check.seq_duplicate or check.seq_out_of_order or check.seq_corrupt:
        failures.append("sequence lines missing, duplicated, reordered or corrupt")
    if len(matched) != len(report["marks"]) or not mark_order_ok:
        failures.append("expect did not match every marker exactly once, in order")
    if achieved < 0.95 * target:
        failures.append(f"achieved rate {achieved:,.0f} bytes/s is below 95% of the target: the "
                        "reader fell behind and the feeder's write() blocked")
    if tmp is not None:
        tmp.cleanup()
    else:
        print(f"logs kept in {log_dir}")
    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print("PASS")
    return 1 if failures else 0


# -- expect-scaling mode --------------------------------------------------------------------------
_TEMPLATES = (
    "[{t:12.6f}] usb 1-1.{a}: new high-speed USB device number {b} using xhci-hcd",
    "[{t:12.6f}] mmc0: new HS400 Enhanced strobe MMC card at address 0001",
    "[{t:12.6f}] EXT4-fs (mmcblk0p{a}): mounted filesystem with ordered data mode. Quota mode: none.",
    "[{t:12.6f}] [talos] task {name} ({a}/{b}): starting",
    "[{t:12.6f}] rk_gmac-dwmac fe1b0000.ethernet eth0: Link is Up - 1Gbps/Full - flow control rx/tx",
    '[{t:12.6f}] [talos] service[etcd](Waiting): Waiting for service "cri" to be "up"',
    "[{t:12.6f}] [talos] task {name} ({a}/{b}): done, {b}.{a}ms",
    "[{t:12.6f}] audit: type=1400 audit({t:.3f}:{b}): apparmor=\"STATUS\" operation=\"profile_load\"",
    "[{t:12.6f}] cni0: port {a}(veth{b:08x}) entered forwarding state",
    "[{t:12.6f}] [talos] {name}: retrying error: Get \"https://127.0.0.1:6443/api\": dial tcp: refused",
)
_NAMES = ("startAllServices", "mountUserDisks", "setupSystemDirectory", "writeUserFiles", "loadConfig")


class ConsoleText:
    """An endless stream of console-like lines, handed out in fixed-size chunks."""

    def __init__(self) -> None:
        self._n = 0
        self._pending = ""

    def _line(self) -> str:
        n = self._n
        self._n += 1
        return _TEMPLATES[n % len(_TEMPLATES)].format(
            t=n * 0.000731, a=n % 7, b=n % 4099, name=_NAMES[n % len(_NAMES)]) + "\n"

    def chunk(self, size: int) -> str:
        parts = [self._pending]
        length = len(self._pending)
        while length < size:
            line = self._line()
            parts.append(line)
            length += len(line)
        text = "".join(parts)
        self._pending = text[size:]
        return text[:size]

    def chunk_ending_with(self, size: int, line: str) -> str:
        """About `size` characters whose last line is `line` (a chunk boundary right after it)."""
        body = self.chunk(max(0, size - len(line) - len(self._pending)))
        text = body + self._pending + line
        self._pending = ""
        return text


class Probe:
    """Stands in for a compiled pattern: counts searches and signals each one (for handshakes)."""

    def __init__(self, pattern: str) -> None:
        self._compiled = re.compile(pattern, re.MULTILINE)
        self.pattern = self._compiled.pattern
        self.searched = threading.Event()
        self.calls = 0
        self.last_searched = 0

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        found = self._compiled.search(text, pos)
        self.calls += 1
        self.last_searched = len(text) - pos
        self.searched.set()
        return found


@dataclass
class Row:
    size_mb: float
    typical_us: float = 0.0
    typical_max_us: float = 0.0
    typical_rss_mb: float = 0.0
    wake_cpu_us: float = 0.0
    wake_wall_us: float = 0.0
    wake_chars: int = 0
    fresh_ms: float = 0.0
    unconsumed_rss_mb: float = 0.0


def checkpoints(total: int, every: int) -> Iterator[int]:
    yield from range(every, total + 1, every)


def scaling_typical(rows: dict[int, Row], total: int, every: int, chunk: int, reps: int) -> None:
    """(a) Text before each wait was consumed by the previous match, as in a real gate sequence."""
    from harness.console.buffer import ExpectBuffer, Match

    buffer = ExpectBuffer()
    text = ConsoleText()
    progress_every = 64 * 1024  # a test waits for something every so often, consuming up to it
    next_progress = progress_every
    progress = 0
    for point in checkpoints(total, every):
        while buffer.received < point:
            buffer.append(text.chunk(chunk))
            if buffer.received >= next_progress:
                buffer.append(text.chunk_ending_with(chunk, f"progress {progress} reached\n"))
                pattern = re.compile(rf"^progress {progress} reached\n", re.MULTILINE)
                if not isinstance(buffer.expect([pattern], timeout=0), Match):
                    raise SystemExit(f"expect did not find progress line {progress}")
                progress += 1
                next_progress = buffer.received + progress_every
        times = []
        for rep in range(reps):
            marker = f"CHECKPOINT {point // MB} MB rep {rep} token {point:x}{rep:x}\n"
            buffer.append(text.chunk_ending_with(chunk, marker))
            pattern = re.compile("^" + re.escape(marker), re.MULTILINE)
            started = time.perf_counter()
            found = buffer.expect([pattern], timeout=0)
            times.append(time.perf_counter() - started)
            if not isinstance(found, Match):
                raise SystemExit(f"expect did not find {marker!r}")
        row = rows.setdefault(point, Row(point / MB))
        row.typical_us = statistics.median(times) * 1e6
        row.typical_max_us = max(times) * 1e6
        row.typical_rss_mb = rss_now_mb()
    buffer.close()


def _settle(buffer: ExpectBuffer, probe: Probe, text: ConsoleText, chunk: int) -> None:
    """Wait until the waiting expect has searched everything and is back asleep."""
    probe.searched.clear()
    buffer.append(text.chunk(chunk))
    if not probe.searched.wait(10):
        raise SystemExit("the waiting expect did not wake up")
    time.sleep(0.02)


def scaling_unconsumed(rows: dict[int, Row], total: int, every: int, chunk: int, wakeups: int) -> None:
    """(b) Nothing is ever consumed; one expect waits for a line that never comes while chunks arrive."""
    from harness.console.buffer import BufferClosed, ExpectBuffer

    buffer = ExpectBuffer()
    text = ConsoleText()
    probe = Probe(r"^NEVER PRINTED (\d+)$")
    outcome: list[object] = []

    def wait_forever() -> None:
        try:
            outcome.append(buffer.expect([cast(re.Pattern[str], probe)], timeout=3600))
        except BufferClosed:
            outcome.append("closed")

    waiter = threading.Thread(target=wait_forever, name="waiting-expect", daemon=True)
    waiter.start()
    never = re.compile(r"^NOT THERE EITHER$", re.MULTILINE)
    for point in checkpoints(total, every):
        while buffer.received < point - wakeups * chunk:
            buffer.append(text.chunk(chunk))
        _settle(buffer, probe, text, chunk)
        cpu0 = thread_cpu_s(waiter)
        calls0 = probe.calls
        walls = []
        for _ in range(wakeups):
            probe.searched.clear()
            started = time.perf_counter()
            buffer.append(text.chunk(chunk))
            if not probe.searched.wait(10):
                raise SystemExit("the waiting expect did not wake up")
            walls.append(time.perf_counter() - started)
        time.sleep(0.02)
        cpu = thread_cpu_s(waiter) - cpu0
        searches = probe.calls - calls0
        row = rows.setdefault(point, Row(point / MB))
        row.wake_cpu_us = cpu / max(1, searches) * 1e6
        row.wake_wall_us = statistics.median(walls) * 1e6
        row.wake_chars = probe.last_searched
        # A *new* expect call must search all unconsumed text: nothing else can have matched it yet.
        started = time.perf_counter()
        found = buffer.expect([never], timeout=0)
        row.fresh_ms = (time.perf_counter() - started) * 1e3
        if found is not None:
            raise SystemExit("a pattern that was never printed matched")
        row.unconsumed_rss_mb = rss_now_mb()
    buffer.close()
    waiter.join(5)
    if outcome != ["closed"]:
        raise SystemExit(f"the waiting expect ended with {outcome!r}")


def run_scaling(args: argparse.Namespace) -> int:
    total = int(args.size_mb * MB)
    every = int(args.checkpoint_mb * MB)
    print(f"machine: {machine_info()}")
    print(f"expect-scaling: {args.size_mb:g} MB of console-like text in {args.chunk}-character chunks, "
          f"checkpoint every {args.checkpoint_mb:g} MB")
    rows: dict[int, Row] = {}
    started = time.perf_counter()
    scaling_typical(rows, total, every, args.chunk, args.reps)
    typical_s = time.perf_counter() - started
    started = time.perf_counter()
    scaling_unconsumed(rows, total, every, args.chunk, args.wakeups)
    unconsumed_s = time.perf_counter() - started
    print(f"\n(a) typical: earlier text consumed by earlier matches (a match every 64 KiB); time of an "
          f"expect(timeout=0) that finds a marker at the end of a fresh {args.chunk}-char chunk, "
          f"median and max of {args.reps}")
    print("(b) nothing consumed: one expect() waiting for a line that never comes, woken by every "
          f"{args.chunk}-char chunk; CPU of the waiting thread per wakeup, median wall time from append "
          f"to its search done (n={args.wakeups}), chars it searched per wakeup; and a fresh "
          "expect(timeout=0) that fails (it must search all unconsumed text)")
    print()
    header = (f"{'buffer MB':>9} | {'(a) find us':>11} {'(a) max us':>10} {'RSS MB':>7} | "
              f"{'(b) wake CPU us':>15} {'wake wall us':>12} {'chars/wake':>10} | "
              f"{'fresh fail ms':>13} {'RSS MB':>7}")
    print(header)
    print("-" * len(header))
    for point in sorted(rows):
        r = rows[point]
        print(f"{r.size_mb:>9.0f} | {r.typical_us:>11.1f} {r.typical_max_us:>10.1f} {r.typical_rss_mb:>7.1f} | "
              f"{r.wake_cpu_us:>15.1f} {r.wake_wall_us:>12.1f} {r.wake_chars:>10,} | "
              f"{r.fresh_ms:>13.2f} {r.unconsumed_rss_mb:>7.1f}")
    print(f"\npass (a) {typical_s:.1f} s, pass (b) {unconsumed_s:.1f} s; "
          f"peak RSS {peak_rss_mb():.1f} MB (this process)")
    return 0


# -- command line -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the harness console engine: sustained 1.5 Mbaud throughput through a pty "
                    "(no byte lost, expect latency, reader CPU) or expect cost as the buffer grows.")
    parser.add_argument("--mode", choices=("throughput", "expect-scaling", "feed"), default="throughput",
                        help="throughput (default) or expect-scaling; 'feed' is the internal feeder process")
    group = parser.add_argument_group("throughput")
    group.add_argument("--seconds", type=float, default=60.0, help="how long the feeder writes (default 60)")
    group.add_argument("--rate", type=int, default=150_000, help="target bytes/s (default 150000)")
    group.add_argument("--tick-ms", type=float, default=10.0, help="burst interval in ms (default 10)")
    group.add_argument("--mark-ms", type=float, default=100.0, help="marker interval in ms (default 100)")
    group.add_argument("--baud", type=int, default=1_500_000, help="baud the Console opens (default 1500000)")
    group.add_argument("--log-dir", help="keep console.raw/.log/.raw.idx here instead of a temp dir")
    group = parser.add_argument_group("expect-scaling")
    group.add_argument("--size-mb", type=float, default=50.0, help="text to append (default 50 MB)")
    group.add_argument("--checkpoint-mb", type=float, default=5.0, help="measure every N MB (default 5)")
    group.add_argument("--chunk", type=int, default=4096, help="characters per appended chunk (default 4096)")
    group.add_argument("--reps", type=int, default=21, help="(a) timed finds per checkpoint (default 21)")
    group.add_argument("--wakeups", type=int, default=200, help="(b) timed wakeups per checkpoint (default 200)")
    group.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    group.add_argument("--report", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "feed":
        if args.fd is None or args.report is None:
            raise SystemExit("--mode feed is internal: it needs --fd and --report")
        feed(args.fd, args.seconds, args.rate, args.tick_ms, args.mark_ms, Path(args.report))
        return 0
    if args.mode == "expect-scaling":
        return run_scaling(args)
    return run_throughput(args)


if __name__ == "__main__":
    sys.exit(main())
