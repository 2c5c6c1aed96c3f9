"""Children the harness owns die with it: PR_SET_PDEATHSIG, process groups and stop_all.

Each test uses harmless `sleep` children and takes well under a second when the code is right;
a regression shows as a `sleep 60` that outlives its parent or its group's stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from support import ROOT

from harness.transports.children import _die_with_parent, is_running, live_children, start_child, stop_all

# A throwaway "harness": starts a child through the helper, reports its pid, then idles until killed.
THROWAWAY_HARNESS = """
import time
from harness.transports.children import start_child
print(start_child(["sleep", "60"]).pid, flush=True)
time.sleep(60)
"""


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kill_quietly(pid: int) -> None:
    """Clean up after a failed assertion, so a regression does not leave `sleep 60` behind."""
    if is_running(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    stop_all(timeout=1)


def test_a_child_dies_when_its_harness_is_sigkilled() -> None:
    harness = subprocess.Popen([sys.executable, "-c", THROWAWAY_HARNESS], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT)
    assert harness.stdout is not None
    child = int(harness.stdout.readline())
    try:
        assert is_running(child)
        harness.kill()
        harness.wait()
        assert wait_gone(child, within=3), "PR_SET_PDEATHSIG should have killed the child with its parent"
    finally:
        kill_quietly(child)


def test_a_child_whose_parent_died_before_exec_kills_itself() -> None:
    """The race PDEATHSIG alone leaves open: the parent died between fork and prctl, so no signal comes."""
    not_our_pid = os.getppid()  # what getppid() in the child will not return
    process = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent(not_our_pid))
    try:
        assert process.wait(timeout=5) == -signal.SIGKILL
    finally:
        process.kill()
        process.wait()


def test_stop_all_ends_a_child_and_its_grandchild_with_sigterm() -> None:
    child = start_child(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE)
    assert child.process.stdout is not None
    grandchild = int(child.process.stdout.readline())
    child.process.stdout.close()
    try:
        assert is_running(grandchild) and live_children() == [child]
        started = time.monotonic()
        stop_all(timeout=5)
        assert time.monotonic() - started < 2, "both exit on SIGTERM; no wait for the SIGKILL deadline"
        assert child.returncode == -signal.SIGTERM
        assert wait_gone(grandchild, within=1), "the grandchild is in the child's process group"
        assert live_children() == []
        stop_all(timeout=5)  # idempotent: nothing left, nothing raised
        assert child.stop() == -signal.SIGTERM
    finally:
        kill_quietly(grandchild)


def test_stop_all_escalates_to_sigkill_for_a_group_that_ignores_sigterm() -> None:
    child = start_child(["sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait"], stdout=subprocess.PIPE)
    assert child.process.stdout is not None
    grandchild = int(child.process.stdout.readline())  # inherits the ignored SIGTERM
    child.process.stdout.close()
    try:
        started = time.monotonic()
        stop_all(timeout=0.5)
        elapsed = time.monotonic() - started
        assert child.returncode == -signal.SIGKILL
        assert wait_gone(grandchild, within=1)
        assert 0.5 <= elapsed < 3, elapsed
        assert live_children() == []
    finally:
        kill_quietly(grandchild)


def test_a_child_outliving_its_leader_is_still_stopped() -> None:
    """The leader may exit first; the rest of its group must not be forgotten."""
    child = start_child(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE)
    assert child.process.stdout is not None
    grandchild = int(child.process.stdout.readline())
    child.process.stdout.close()
    try:
        assert child.wait(timeout=5) == 0 and is_running(grandchild)
        assert child.stop(timeout=5) == 0
        assert wait_gone(grandchild, within=1)
    finally:
        kill_quietly(grandchild)


def test_children_are_started_from_the_main_thread_only() -> None:
    """PR_SET_PDEATHSIG follows the forking thread: a worker's child would die when the worker returns."""
    caught: list[BaseException] = []

    def worker() -> None:
        try:
            start_child(["sleep", "60"])
        except RuntimeError as exc:
            caught.append(exc)

    thread = threading.Thread(target=worker, name="not-main")
    thread.start()
    thread.join()
    assert len(caught) == 1 and "main thread" in str(caught[0]) and "not-main" in str(caught[0])
    assert live_children() == []


def test_a_zombie_is_not_running() -> None:
    """A zombie still answers kill(pid, 0); counting it as running would turn each stop into a timeout."""
    process = subprocess.Popen(["true"])
    assert wait_gone(process.pid, within=5)
    assert os.path.exists(f"/proc/{process.pid}"), "exited but not yet reaped: a zombie"
    process.wait()
    assert not is_running(process.pid)
