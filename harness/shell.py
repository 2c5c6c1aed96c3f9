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
from harness.console.console import Console

_counter = itertools.count(1)
_KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\] ")


class LinuxShell:
    def __init__(self, console: Console, prompt: str) -> None:
        self.console = console
        self.prompt = re.compile(re.escape(prompt))

    def sync(self, timeout: float = 10.0) -> None:
        """Forget stale output and wait for a fresh prompt."""
        self.console.discard_pending()
        self.console.sendline("")
        self.console.expect(self.prompt, timeout, stage="kernel", what="the shell prompt")

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
