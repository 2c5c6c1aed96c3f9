"""A run owns its record directory: one live run at a time, and a fresh record every run.

Two runs writing the same directory would read each other's console bytes and overwrite each
other's report. So a run takes an exclusive lock on `DIR/.run.lock` (held for the life of the
process, released by the kernel even when the run is killed), refuses a directory another live
run holds (naming its process), and moves the previous run's record aside into `DIR/previous/`
(one generation kept; older ones are dropped) before writing anything. Only files the harness
writes are moved: anything else a user keeps in the directory stays where it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

LOCK_NAME = ".run.lock"
PREVIOUS = "previous"
# What a run writes into its directory; the previous run's copies of these are moved aside.
RECORD_NAMES = ("console.raw", "console.raw.idx", "console.log", "events.jsonl", "report.html", "junit.xml",
                "virtual-board.log", "qemu-assets.log", "qemu", "run.json")


@dataclass
class RunDirectory:
    path: Path
    moved_aside: list[str]
    _lock_fd: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def claim(path: Path, *, option: str = "--report-dir") -> RunDirectory:
    """Lock `path` for this run and start a fresh record there; ConfigError if it cannot be ours."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a directory: pass a directory for the run's record")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(f"{option} {path} cannot be written ({exc.strerror}): pass a directory you can write, "
                          "or fix its permissions") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(f"{option} {path} is in use by another run ({holder}): wait for it to finish, or pass "
                          f"another {option}") from None
    if not os.access(path, os.W_OK):
        os.close(fd)
        raise ConfigError(f"{option} {path} is not writable: pass a directory you can write, or fix its permissions")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "command": " ".join(sys.argv)}).encode())
    return RunDirectory(path, _move_previous_aside(path), fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']}, started {info['started']}: {info['command']}"
    except (OSError, ValueError, KeyError):
        return "a process holding its lock"


def _move_previous_aside(path: Path) -> list[str]:
    found = [name for name in RECORD_NAMES if (path / name).exists() or (path / name).is_symlink()]
    if not found:
        return []
    previous = path / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir()
    for name in found:
        (path / name).rename(previous / name)
    return found
