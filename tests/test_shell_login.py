"""The Linux shell driver facing a getty, as a real board's debug initramfs may present one.

The far side is a small fake getty on a pty that speaks what a terminal sees: a login prompt with
no newline after it, the typed name echoed, a `# ` prompt, and `$?` carried by the marker echo.
Behind the login, the shell runs the same command runner as U-Boot: its verbs are tested here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pty_peer import LinePeer

from harness.command import CommandFailed, PollTimeout
from harness.console.console import Console
from harness.errors import BenchError
from harness.shell import LinuxShell

# What `lsusb -v` prints here: far more than the console's 8 KB search window, in distinct lines.
LSUSB = [f"Bus 00{i % 4} Device {i:04d}: ID 1d6b:{i:04x} Linux Foundation root hub, port {i}" for i in range(1000)]
LINK_UP_AT_READ = 3


class FakeGetty:
    """Answers line by line: login prompt until a user is given, then a shell running `uname -m` and
    `lsusb -v`, each answer written in small pieces as a UART delivers it (the console reads it in many)."""

    def __init__(self, ask_password: bool = False) -> None:
        self.ask_password = ask_password
        self.user: str | None = None
        self.operstate_reads = 0  # the link comes up at the third read, as a PHY negotiates
        self.peer = LinePeer(self._answer, piece=2048, gap=0.002)
        self.path = self.peer.path

    def _answer(self, line: str) -> str:
        if self.user is None:
            if not line:
                return "\r\nhil-debug login: "
            self.user = line
            kernel_line = "[    9.100000] random: crng init done\r\n"
            return f"{line}\r\n" + ("Password: " if self.ask_password else kernel_line + "# ")
        marker = re.search(r"echo (=\w+=)\$\?=$", line)
        if line.startswith("cat /sys/class/net/eth0/operstate"):
            self.operstate_reads += 1
        outputs = {"uname -m": ("aarch64\r\n", 0), "lsusb -v": ("".join(f"{entry}\r\n" for entry in LSUSB), 0),
                   "ls /hil-missing": ("ls: /hil-missing: No such file or directory\r\n", 1),
                   "dmesg-noisy": ("out1\r\n[   12.345678] usb 1-1: new high-speed USB device\r\nout2\r\n", 0),
                   "cat /sys/class/net/eth0/operstate": (
                       "up\r\n" if self.operstate_reads >= LINK_UP_AT_READ else "down\r\n", 0)}
        output, status = next((answer for command, answer in outputs.items() if line.startswith(command)), ("", 0))
        return f"{line}\r\n{output}" + (f"{marker.group(1)}{status}=\r\n" if marker else "") + "# "

    def close(self) -> None:
        self.peer.close()


@pytest.fixture
def getty(request: pytest.FixtureRequest) -> Iterator[FakeGetty]:
    fake = FakeGetty(ask_password=getattr(request, "param", False))
    yield fake
    fake.close()


@pytest.fixture
def console(getty: FakeGetty, tmp_path: Path) -> Iterator[Console]:
    with Console(getty.path, 115200, tmp_path) as live:
        yield live


def test_logs_in_as_the_profiles_user_then_runs_commands(getty: FakeGetty, console: Console) -> None:
    shell = LinuxShell(console, "# ", login_user="root")
    shell.sync(timeout=5)
    assert getty.user == "root"
    result = shell.exec("uname -m", timeout=5)
    assert (result.status, result.output) == (0, "aarch64")


def test_an_output_far_longer_than_the_search_window_comes_back_whole(console: Console) -> None:
    """`lsusb -v` or `dmesg` print tens of KB over many reads: the driver must return all of it, the
    beginning included, though each search looks only at the newest 8 KB."""
    shell = LinuxShell(console, "# ", login_user="root")
    shell.sync(timeout=5)
    result = shell.exec("lsusb -v", timeout=10)
    assert len(result.output) > 64 * 1024
    assert result.status == 0
    assert result.output.splitlines() == LSUSB


def test_a_login_prompt_without_a_user_is_a_bench_error(console: Console) -> None:
    with pytest.raises(BenchError, match=r"asks for a login.*shell\.login_user"):
        LinuxShell(console, "# ").sync(timeout=5)


@pytest.mark.parametrize("getty", [True], indirect=True)
def test_a_password_prompt_is_refused_clearly(console: Console) -> None:
    with pytest.raises(BenchError, match="'root' needs a password"):
        LinuxShell(console, "# ", login_user="root").sync(timeout=5)


# -- the runner's verbs, as the shell speaks them -------------------------------------------------------
@pytest.fixture
def shell(console: Console) -> LinuxShell:
    logged_in = LinuxShell(console, "# ", login_user="root")
    logged_in.sync(timeout=5)
    return logged_in


def test_exec0_raises_with_the_shells_answer(shell: LinuxShell) -> None:
    assert shell.exec0("uname -m", timeout=5).output == "aarch64"
    with pytest.raises(CommandFailed, match=r"^shell command 'ls /hil-missing' exited 1: "
                                            r"ls: /hil-missing: No such file or directory$") as raised:
        shell.exec0("ls /hil-missing", timeout=5)
    assert raised.value.stage == "kernel"


def test_test_answers_by_exit_status(shell: LinuxShell) -> None:
    assert shell.test("uname -m", timeout=5) is True
    assert shell.test("ls /hil-missing", timeout=5) is False


def test_kernel_messages_inside_an_output_are_dropped(shell: LinuxShell) -> None:
    assert shell.exec("dmesg-noisy", timeout=5).output == "out1\nout2"


def test_poll_until_waits_for_the_link_to_come_up(getty: FakeGetty, shell: LinuxShell) -> None:
    result = shell.poll_until("cat /sys/class/net/eth0/operstate", lambda r: r.output == "up", timeout=10,
                              interval=0.05, command_timeout=5)
    assert result.output == "up"
    assert getty.operstate_reads == LINK_UP_AT_READ, "one read per try, and none after the link came up"


def test_poll_until_that_never_sees_its_answer_quotes_the_last_one(getty: FakeGetty, shell: LinuxShell) -> None:
    with pytest.raises(PollTimeout) as raised:
        shell.poll_until("cat /sys/class/net/eth0/operstate", lambda r: r.output == "dormant", timeout=0.3,
                         interval=0.05, command_timeout=5)
    assert str(raised.value).startswith("shell command 'cat /sys/class/net/eth0/operstate' did not give the "
                                        "expected answer within ")
    assert str(raised.value).endswith("the last exited 0: up")
    assert raised.value.last.output == "up" and raised.value.tries == getty.operstate_reads


def test_the_login_is_a_step(console: Console, shell: LinuxShell) -> None:
    names = [(event.name, event.outcome) for event in console.log.steps.events]
    assert names == [("shell login", "pass"), ("shell sync", "pass")], "the login nests inside the sync"
    login, sync = console.log.steps.events
    assert (login.parent, login.depth, login.args) == (sync.id, 1, {"user": "root"})
