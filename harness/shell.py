"""Linux shell driver: run a command on the board's console and learn its exit status.

For stages that have a shell: the QEMU board, or a real board booted into a debug initramfs
during kernel bring-up before Talos exists. Like the U-Boot driver, every command is followed by
an echo of a unique marker carrying `$?`. Kernel messages that land in the middle of the output
(timestamped `[ 12.345678]` lines) are dropped from it, and the cursor-position query busybox
sends after its prompt is an escape sequence the console's cleaner already removes.
"""

from __future__ import annotations

import itertools
import re

from harness.command import CommandResult
from harness.console.buffer import AT_END
from harness.console.console import Console
from harness.errors import BenchError

_counter = itertools.count(1)
_KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\] ")
_LOGIN = re.compile(r"login: " + AT_END)
_PASSWORD = re.compile(r"[Pp]assword: " + AT_END)


class LinuxShell:
    def __init__(self, console: Console, prompt: str, *, login_user: str | None = None) -> None:
        self.console = console
        self.prompt = re.compile(re.escape(prompt))
        self.login_user = login_user

    def sync(self, timeout: float = 10.0) -> None:
        """Forget stale output and wait for a fresh prompt, logging in first if a getty asks."""
        self.console.discard_pending()
        self.console.sendline("")
        found = self.console.expect([self.prompt, _LOGIN, _PASSWORD], timeout, stage="kernel", what="the shell prompt")
        if found.index == 0:
            return
        if found.index == 2 or self.login_user is None:
            raise BenchError(
                "the console asks for a " + ("password" if found.index == 2 else "login") + ": the harness logs in "
                "only as a passwordless user; set shell.login_user in the board profile and boot a debug "
                "initramfs whose user has no password")
        self.console.sendline(self.login_user)
        found = self.console.expect([self.prompt, _PASSWORD], timeout, stage="kernel", what="the shell prompt")
        if found.index == 1:
            raise BenchError(f"user {self.login_user!r} needs a password on this console; use a passwordless user")

    def run(self, command: str, timeout: float = 20.0) -> CommandResult:
        tag = f"HILSH{next(_counter)}"
        self.console.sendline(f"{command}; echo ={tag}=$?=")
        marker = self.console.expect(re.compile(rf"^={tag}=(\d+)=$", re.MULTILINE), timeout, stage="kernel",
                                     what=f"the end of shell command {command!r}")
        self.console.expect(self.prompt, timeout, stage="kernel", what="the shell prompt after a command")
        lines = marker.before.split("\n")
        echoed = [i for i, line in enumerate(lines) if f"={tag}=$?=" in line]
        if echoed:
            lines = lines[echoed[-1] + 1:]  # the command line as the shell echoed it, and a prompt before it
        output = "\n".join(line for line in lines if not _KERNEL_LINE.match(line))
        return CommandResult(command, int(marker.group(1) or 1), output.strip("\n"))
