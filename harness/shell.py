"""Linux shell driver: log in if a getty asks, then run commands through the shared command runner.

For stages that have a shell: the QEMU board, or a real board booted into a debug initramfs
during kernel bring-up before Talos exists. What is the shell's own is data (its prompt, the
stage, the marker prefix, a command timeout, and kernel messages as noise: timestamped
`[ 12.345678]` lines that land in the middle of a command's output are dropped from it) and
`sync`, which handles the login. The cursor-position query busybox sends after its prompt is an
escape sequence the console's cleaner already removes.
"""

from __future__ import annotations

import re

from harness.console.buffer import AT_END
from harness.console.console import Console
from harness.errors import BenchError
from harness.runner import CommandRunner, Dialect
from harness.steps import StepRecorder, step

SHELL = Dialect(label="shell", step_name="shell command", stage="kernel", marker_prefix="HILSH",
                default_timeout=20.0, noise=re.compile(r"^\s*\[\s*\d+\.\d+\] "))
_LOGIN = re.compile(r"login: " + AT_END)
_PASSWORD = re.compile(r"[Pp]assword: " + AT_END)


class LinuxShell(CommandRunner):
    def __init__(self, console: Console, prompt: str, *, login_user: str | None = None,
                 steps: StepRecorder | None = None) -> None:
        super().__init__(console, prompt, SHELL, steps=steps)
        self.login_user = login_user

    @step("shell sync", "timeout")
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
        with self.steps.step("shell login", user=self.login_user):
            self.console.sendline(self.login_user)
            found = self.console.expect([self.prompt, _PASSWORD], timeout, stage="kernel", what="the shell prompt")
            if found.index == 1:
                raise BenchError(f"user {self.login_user!r} needs a password on this console; use a passwordless user")
