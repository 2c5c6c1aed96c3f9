"""U-Boot driver: stop at the prompt, then run commands through the shared command runner.

What is U-Boot's own is data (its prompt from the board profile, the stage, the marker prefix,
a command timeout) and `sync`, which throws away the stray prompts the autoboot interrupt leaves.
The exit-status protocol and the verbs (`exec`, `exec0`, `test`, `poll_until`) are harness.runner's;
hush sets `$?` like a POSIX shell, which the marker relies on.
"""

from __future__ import annotations

import time

from harness.config.profile import BoardProfile
from harness.console.console import Console
from harness.runner import CommandRunner, Dialect
from harness.steps import StepRecorder, step

UBOOT = Dialect(label="U-Boot", step_name="u-boot command", stage="u-boot", marker_prefix="HIL",
                default_timeout=10.0)


class UBoot(CommandRunner):
    def __init__(self, console: Console, profile: BoardProfile, *, steps: StepRecorder | None = None) -> None:
        super().__init__(console, profile.uboot.prompt, UBOOT, steps=steps)
        self.profile = profile

    @step("u-boot sync", "timeout")
    def sync(self, timeout: float = 5.0) -> None:
        """Throw away stray prompts (several interrupts each print one) and wait for a fresh one."""
        time.sleep(self.profile.uboot.interrupt_every_ms / 1000 * 2)
        self.console.discard_pending()
        self.console.sendline("")
        self.console.expect(self.prompt, timeout, stage="u-boot",
                            what=f"the U-Boot prompt {self.profile.uboot.prompt!r}")
