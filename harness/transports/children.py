"""Child processes the harness owns (QEMU today, ser2net and others later): they die with the harness.

Three guarantees, because a child left behind holds a board's serial port, a TCP port or a
gigabyte of guest memory and breaks the next run in ways that look like hardware faults:

- Each child runs in its own session and process group (`start_new_session=True`). A Ctrl-C in
  the terminal then reaches only the harness, which decides the order (power the board off,
  then stop its children) instead of every process dying at once mid-step.
- The kernel SIGKILLs the child when the harness dies, however it dies (`PR_SET_PDEATHSIG`,
  set in the child between fork and exec). Linux fires this when the *thread* that forked the
  child exits, not the process, so children are started from the main thread only, which lives
  as long as the run; `start_child` refuses any other thread rather than hand back a child that
  a finished worker thread would kill at a random moment.
- `OwnedChild.stop` ends the whole process group (SIGTERM, a grace period, then SIGKILL), so
  helpers a child spawned go with it, and `stop_all` does that for every live child, for a
  signal handler or an exit path that has no reference to the objects.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_INTERVAL = 0.02

# Loaded before any fork: dlopen in the child between fork and exec could deadlock on a lock
# another parent thread held at fork time.
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_prctl.restype = ctypes.c_int

_registry_lock = threading.RLock()  # re-entrant: stop_all may run in a signal handler on the main thread
_live: list[OwnedChild] = []


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """The preexec_fn: ask for SIGKILL when the parent (thread) dies, and close the race with its death.

    If the parent died between fork and prctl, the signal will never come: the child was already
    re-parented, so getppid() no longer names the parent and the child kills itself before exec.
    """

    def preexec() -> None:
        if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(127)  # no guarantee, no child: exec would hand back an orphan-to-be
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _proc_stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat fields from the state on (state, ppid, pgrp, ...), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (dead, not yet reaped by whoever adopted it) is not."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _group_members(pgid: int) -> list[int]:
    """Running (not zombie) processes in process group `pgid`, read from /proc.

    A zombie still answers kill(0); a grandchild re-parented to an init that does not reap would
    otherwise look alive forever and turn every stop into a full timeout.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # a member we cannot signal still counts; /proc says which
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)  # None when it exited while we looked
            if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


class OwnedChild:
    """One child process the harness owns, with its process group. Build it with `start_child`."""

    def __init__(self, process: subprocess.Popen[bytes], name: str) -> None:
        self.process = process
        self.name = name
        self.pgid = process.pid  # a new session's leader leads its own group: pgid == pid

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the child itself to exit; its exit status, or None if it still runs.

        Polls rather than calling Popen.wait(): a blocking Popen.wait holds a lock that a signal
        handler calling stop_all on the same thread would then wait for forever.
        """
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
        return code

    def stop(self, timeout: float = 5.0) -> int | None:
        """End the child and its whole process group: SIGTERM, up to `timeout` s, then SIGKILL.

        Idempotent, and safe to call again from a signal handler while a stop is under way.
        Returns the child's exit status (negative for a signal, as in subprocess), or None if
        even SIGKILL did not reap it within a few seconds (a process stuck in the kernel).
        """
        try:
            if self.process.poll() is None or _group_members(self.pgid):
                self._signal_group(signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and (self.process.poll() is None or _group_members(self.pgid)):
                    time.sleep(_POLL_INTERVAL)
                if self.process.poll() is None or _group_members(self.pgid):
                    self._signal_group(signal.SIGKILL)
            return self.wait(timeout=5.0)
        finally:
            if self.process.returncode is not None:
                with _registry_lock:
                    if self in _live:
                        _live.remove(self)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group emptied since we looked
            os.killpg(self.pgid, signum)

    def __repr__(self) -> str:
        return f"OwnedChild({self.name!r}, pid={self.pid}, returncode={self.returncode})"


def start_child(argv: Sequence[str | os.PathLike[str]], *, name: str | None = None, **popen: Any) -> OwnedChild:
    """Start `argv` as a child the harness owns; `popen` goes to subprocess.Popen (stdin, stdout, cwd, env...).

    Must run on the main thread: PR_SET_PDEATHSIG follows the forking thread, and the main thread
    is the one that lives as long as the run. The child is registered for `stop_all` until stopped.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(f"start_child must run on the main thread, not {threading.current_thread().name!r}: "
                           "the kernel would kill the child when this thread exits (PR_SET_PDEATHSIG)")
    for reserved in ("start_new_session", "process_group", "preexec_fn"):
        if reserved in popen:
            raise TypeError(f"start_child sets {reserved} itself")
    process = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
                               **popen)
    child = OwnedChild(process, name or os.fspath(argv[0]))
    with _registry_lock:
        _live.append(child)
    return child


def live_children() -> list[OwnedChild]:
    """The children started and not yet stopped (or seen exited by stop), oldest first."""
    with _registry_lock:
        return list(_live)


def stop_all(timeout: float = 5.0) -> None:
    """Stop every live child within one shared `timeout`, newest first. Idempotent.

    Meant for a signal handler or an exit path; the normal path stops each child where it was
    started (QemuMachine.close), after powering the board off. All groups get SIGTERM at once so
    a Ctrl-C waits at most `timeout` in total, not per child.
    """
    children = list(reversed(live_children()))
    for child in children:
        if child.poll() is None:
            child._signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        child.stop(max(0.0, deadline - time.monotonic()))
