"""U-Boot driver: stop autoboot, run commands and learn their exit status.

A command's text alone can lie (an error message can look like output), so every command is
followed by `echo` of a unique marker carrying `$?`, as hush sets it; the marker in the typed
echo reads `$?`, never a digit, so only the answer can match.
"""

from __future__ import annotations

import itertools
import re
import time

from harness.command import CommandResult
from harness.config.profile import BoardProfile
from harness.console.console import Console

_counter = itertools.count(1)


class UBoot:
    def __init__(self, console: Console, profile: BoardProfile) -> None:
        self.console = console
        self.profile = profile
        self.prompt = re.compile(re.escape(profile.uboot.prompt))

    def sync(self, timeout: float = 5.0) -> None:
        """Throw away stray prompts (several interrupts each print one) and wait for a fresh one."""
        time.sleep(self.profile.uboot.interrupt_every_ms / 1000 * 2)
        self.console.discard_pending()
        self.console.sendline("")
        self.console.expect(self.prompt, timeout, stage="u-boot",
                            what=f"the U-Boot prompt {self.profile.uboot.prompt!r}")

    def run(self, command: str, timeout: float = 10.0) -> CommandResult:
        tag = f"HIL{next(_counter)}"
        self.console.sendline(f"{command}; echo ={tag}=$?=")
        marker = self.console.expect(
            re.compile(rf"^={tag}=(\d+)=$", re.MULTILINE), timeout, stage="u-boot",
            what=f"the end of U-Boot command {command!r}")
        self.console.expect(self.prompt, timeout, stage="u-boot", what="the U-Boot prompt after a command")
        lines = marker.before.split("\n")
        # The first line is the command as echoed; drop it when it is there.
        if lines and command in lines[0]:
            lines = lines[1:]
        return CommandResult(command, int(marker.group(1) or 1), "\n".join(lines).strip("\n"))
