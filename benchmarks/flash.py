#!/usr/bin/env python3
"""Benchmark the flash writer (harness/flash) against `dd bs=4M conv=fsync` and `bmaptool copy`.

Why this exists: every bring-up iteration starts with a flash, so the writer must be at least as
fast as the tools an engineer would otherwise type. The targets (issue 11): at least dd's rate on a
dense image (random data throughout: nothing to skip, so this measures the pipeline itself), and at
least bmaptool's on a sparse, Talos-shaped one (mostly zeros, a few hundred MB of data, with a
`.bmap` made by `bmaptool create`), for each of `.raw`, `.raw.xz` and `.raw.zst`.

Method: the images are built once in --workdir. Each case writes one image with each tool to the
same target — a file (truncated first by every tool) and, when `losetup` works here (root), a loop
device over a file of the image's size (a reused medium: it keeps what the previous run wrote).
The page cache is dropped before every run (`/proc/sys/vm/drop_caches` when allowed, else
POSIX_FADV_DONTNEED on the image files and the target), so each tool reads its image from disk.
dd gets compressed images through `xz -dc` / `zstd -dc` in a pipe, as a user would type it.
The rate is image bytes (decompressed size) over wall time, fsync included, so a tool that skips
zeros gets credit for them. `hil` is write_image with verify off (dd and bmaptool do not read back);
`hil+verify` adds the read-back, for the record.

Needs the project installed (`pip install -e .` and `zstandard`), and `bmaptool`, `xz`, `zstd` on
PATH (Debian: bmap-tools, xz-utils, zstd). Linux only.

    python benchmarks/flash.py --size 1200M          # the issue's Talos-sized image
    python benchmarks/flash.py --size 256M --data 64M  # a quick run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
DD = ["dd", "bs=4M", "conv=fsync", "status=none"]


def size_arg(text: str) -> int:
    """`1200M`, `1G`, `512K` or a byte count."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def build_images(workdir: Path, size: int, data: int) -> dict[str, Path]:
    """The sparse (Talos-shaped) and dense raw images, each also as .xz and .zst, with bmaps beside the raws."""
    images: dict[str, Path] = {}
    sparse = workdir / "talos-sparse.raw"
    dense = workdir / "talos-dense.raw"
    if not sparse.exists():
        # Talos's layout, scaled: a bootloader and partitions' data at a few places, zeros between them.
        pieces = 8
        with sparse.open("wb") as file:
            file.truncate(size)
            for index in range(pieces):
                file.seek(index * (size // pieces) // MIB * MIB)
                remaining = data // pieces
                while remaining:
                    block = os.urandom(min(remaining, 4 * MIB))
                    file.write(block)
                    remaining -= len(block)
    if not dense.exists():
        with dense.open("wb") as file:
            remaining = size
            while remaining:
                block = os.urandom(min(remaining, 4 * MIB))
                file.write(block)
                remaining -= len(block)
    for name, raw in (("sparse", sparse), ("dense", dense)):
        bmap = raw.with_name(raw.name + ".bmap")
        if not bmap.exists():
            subprocess.run(["bmaptool", "create", "-o", str(bmap), str(raw)], check=True)
        xz = raw.with_name(raw.name + ".xz")
        if not xz.exists():
            subprocess.run(["xz", "-k", "-1", "-T0", str(raw)], check=True)
        zst = raw.with_name(raw.name + ".zst")
        if not zst.exists():
            subprocess.run(["zstd", "-q", "-T0", str(raw), "-o", str(zst)], check=True)
        images[f"{name} .raw"] = raw
        images[f"{name} .raw.xz"] = xz
        images[f"{name} .raw.zst"] = zst
    return images


def drop_caches(paths: list[Path]) -> str:
    """Drop the page cache before a run: globally if allowed, else per file with fadvise."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return "drop_caches"
    except OSError:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        return "fadvise"


def run_dd(image: Path, target: Path) -> None:
    if image.suffix in (".xz", ".zst"):
        decompress = ["xz", "-dc", str(image)] if image.suffix == ".xz" else ["zstd", "-dcq", str(image)]
        with subprocess.Popen(decompress, stdout=subprocess.PIPE) as producer:
            subprocess.run([*DD, "iflag=fullblock", f"of={target}"], stdin=producer.stdout, check=True)
            assert producer.stdout is not None
            producer.stdout.close()
        if producer.returncode:
            raise RuntimeError(f"{decompress} exited {producer.returncode}")
    else:
        subprocess.run([*DD, f"if={image}", f"of={target}"], check=True)


def run_bmaptool(image: Path, target: Path) -> None:
    raw_name = image.name.removesuffix(".xz").removesuffix(".zst")
    bmap = image.with_name(raw_name + ".bmap")
    subprocess.run(["bmaptool", "-q", "copy", "--bmap", str(bmap), str(image), str(target)], check=True)


def run_hil(verify: bool) -> Callable[[Path, Path], None]:
    from harness.flash import open_target, write_image

    def run(image: Path, target: Path) -> None:
        opened = open_target(target)
        try:
            write_image(image, opened, verify=verify)
        finally:
            opened.close()

    return run


@dataclass
class Result:
    case: str
    target: str
    tool: str
    seconds: float
    size: int

    @property
    def rate(self) -> float:
        return self.size / self.seconds / 1e6


def loop_device(backing: Path, size: int) -> str | None:
    """A loop device over `backing` (created at `size`), or None when losetup is not allowed here."""
    if shutil.which("losetup") is None:
        return None
    with backing.open("ab") as file:
        file.truncate(size)
    try:
        out = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"no loop device ({exc}); file target only", file=sys.stderr)
        return None
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=size_arg, default=size_arg("1200M"), help="image size (default 1200M)")
    parser.add_argument("--data", type=size_arg, default=None, help="data in the sparse image (default size/4)")
    parser.add_argument("--workdir", type=Path, default=None, help="where images and targets go (default: a temp dir "
                                                                   "under /var/tmp, removed after)")
    parser.add_argument("--no-loop", action="store_true", help="skip the loop-device target")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and case; the median is reported "
                                                               "(a shared disk's rate varies run to run)")
    parser.add_argument("--cases", default="", help="comma-separated substrings of case names to run (default all)")
    args = parser.parse_args(argv)
    for tool in ("bmaptool", "xz", "zstd", "dd"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (Debian: bmap-tools, xz-utils, zstd, coreutils)")
    data = args.data if args.data is not None else args.size // 4
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flash-bench-", dir="/var/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"images: {args.size / 1e6:,.0f} MB, sparse one with {data / 1e6:,.0f} MB of data, in {workdir}")
    images = build_images(workdir, args.size, data)
    targets: list[tuple[str, Path]] = [("file", workdir / "target.img")]
    loop = None if args.no_loop else loop_device(workdir / "loop-backing.img", args.size)
    if loop:
        targets.append((f"loop ({loop})", Path(loop)))
    tools: list[tuple[str, Callable[[Path, Path], None]]] = [
        ("dd", run_dd), ("bmaptool", run_bmaptool), ("hil", run_hil(False)), ("hil+verify", run_hil(True))]
    wanted = [c for c in args.cases.split(",") if c]
    results: list[Result] = []
    dropped = ""
    try:
        for case, image in images.items():
            if wanted and not any(w in case for w in wanted):
                continue
            for target_name, target in targets:
                for _ in range(args.repeat):
                    for tool, run in tools:  # interleaved, so a slow spell of the disk hits every tool alike
                        dropped = drop_caches([*images.values(), target])
                        started = time.monotonic()
                        run(image, target)
                        result = Result(case, target_name, tool, time.monotonic() - started, args.size)
                        results.append(result)
                        print(f"  {case:18} {target_name:18} {tool:10} {result.seconds:7.2f} s "
                              f"{result.rate:9,.1f} MB/s", flush=True)
    finally:
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\npage cache dropped before each run with {dropped}; MB/s = image bytes / wall seconds, fsync included, "
          f"median of {args.repeat}")
    print(f"{'case':18} {'target':18} {'dd':>9} {'bmaptool':>9} {'hil':>9} {'hil/dd':>7} {'hil/bmap':>8} "
          f"{'hil+verify':>10}")
    by_key: dict[tuple[str, str, str], Result] = {}
    for key in dict.fromkeys((r.case, r.target, r.tool) for r in results):
        runs = sorted((r for r in results if (r.case, r.target, r.tool) == key), key=lambda r: r.seconds)
        by_key[key] = runs[len(runs) // 2]  # the median run
    for case in dict.fromkeys(r.case for r in results):
        for target_name in dict.fromkeys(r.target for r in results):
            dd, bmap, hil, verified = (by_key[(case, target_name, tool)] for tool, _ in tools)
            print(f"{case:18} {target_name:18} {dd.rate:9,.1f} {bmap.rate:9,.1f} {hil.rate:9,.1f} "
                  f"{hil.rate / dd.rate:7.2f} {hil.rate / bmap.rate:8.2f} {verified.rate:10,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
