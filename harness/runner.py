"""One command runner for every command line on the console: U-Boot's hush and a Linux shell.

A command's text alone can lie (an error message can look like output), so every command is
followed by `echo` of a unique marker carrying `$?`: `<command>; echo =HIL7=$?=`. The marker in the
typed echo reads `$?`, never a digit, so only the answer can match `=HIL7=<status>=`. What the
command printed is the text between the echoed command line and that answer, minus the lines the
dialect calls noise (kernel messages landing in a shell's output).

Three verbs, as tbot has them, plus polling:
- `exec(cmd)` returns a `CommandResult` (status and output), whatever the status;
- `exec0(cmd)` raises `CommandFailed` (a BoardFailure quoting command, status and output) unless 0;
- `test(cmd)` is True when the status is 0;
- `poll_until(cmd, predicate, timeout=, interval=)` repeats `cmd` until its result satisfies the
  predicate, on one `Deadline`, and raises `PollTimeout` quoting the last answer otherwise.

U-Boot and the shell differ only in data (`Dialect`): prompt, stage, marker prefix, noise, default
timeout. Each command is a step (harness.steps) in console.log and events.jsonl.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.command import CommandFailed, CommandResult, PollTimeout
from harness.console.console import Console
from harness.deadline import Deadline
from harness.steps import StepRecorder

# Markers are unique across every runner in the process, not only per runner: after a power cycle a
# new runner on the same console must not take an old runner's late answer for its own.
_marker_numbers = itertools.count(1)


@dataclass(frozen=True)
class Dialect:
    """What one command line differs in; the protocol itself is the runner's."""

    label: str  # in messages: "U-Boot command 'version' exited 1"
    step_name: str  # the step each command is recorded as: "u-boot command"
    stage: str  # the stage its failures are blamed on
    marker_prefix: str  # a word only this harness types
    default_timeout: float  # seconds for one command's answer
    noise: re.Pattern[str] | None = None  # output lines that are not the command's (kernel messages)


class CommandRunner:
    """Runs commands at `prompt` on `console`; records each as a step on `steps` (the console log's)."""

    def __init__(self, console: Console, prompt: str, dialect: Dialect, *, steps: StepRecorder | None = None) -> None:
        self.console = console
        self.prompt = re.compile(re.escape(prompt))
        self.dialect = dialect
        self.steps = console.log.steps if steps is None else steps

    def exec(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command` and return its exit status and output, whatever the status."""
        with self.steps.step(self.dialect.step_name, command=command) as step:
            result = self._exec(command, timeout)
            step.detail = f"exit {result.status}"
        return result

    def exec0(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command`; raise `CommandFailed` (the board answered wrongly) unless it exits 0."""
        with self.steps.step(self.dialect.step_name, command=command) as step:
            result = self._exec(command, timeout)
            step.detail = f"exit {result.status}"
            if not result.ok:
                raise CommandFailed(result, runner=self.dialect.label, stage=self.dialect.stage)
        return result

    def test(self, command: str, timeout: float | None = None) -> bool:
        """True when `command` exits 0: for questions (`test -e /dev/mmcblk0`), not for actions."""
        return self.exec(command, timeout).ok

    def poll_until(self, command: str, predicate: Callable[[CommandResult], bool] | None = None, *,
                   timeout: float, interval: float = 0.5, command_timeout: float | None = None) -> CommandResult:
        """Run `command` every `interval` seconds until `predicate(result)` holds (default: exit 0).

        Returns the first result that satisfies it. After `timeout` seconds (one last try at the
        limit) raises `PollTimeout`, which names the command and quotes the last answer; its `last`
        is that result. A command that does not answer at all still ends the poll at once, with the
        console's own error.
        """
        accept = predicate if predicate is not None else (lambda result: result.ok)
        with self.steps.step(f"poll {self.dialect.step_name}", command=command, timeout=timeout) as step:
            deadline = Deadline(timeout)
            tries = 0
            while True:
                tries += 1
                result = self.exec(command, command_timeout)
                if accept(result):
                    step.detail = f"after {tries} {'try' if tries == 1 else 'tries'}"
                    return result
                if not deadline.sleep(interval):
                    raise PollTimeout(result, runner=self.dialect.label, tries=tries, waited=deadline.elapsed(),
                                      stage=self.dialect.stage)

    def _exec(self, command: str, timeout: float | None) -> CommandResult:
        limit = self.dialect.default_timeout if timeout is None else timeout
        stage, label = self.dialect.stage, self.dialect.label
        tag = f"{self.dialect.marker_prefix}{next(_marker_numbers)}"
        typed_marker = f"={tag}=$?="
        self.console.sendline(f"{command}; echo {typed_marker}")
        answer = self.console.expect(re.compile(rf"^={tag}=(\d+)=$", re.MULTILINE), limit, stage=stage,
                                     what=f"the end of {label} command {command!r}")
        self.console.expect(self.prompt, limit, stage=stage, what=f"the {label} prompt after a command")
        return CommandResult(command, int(answer.group(1) or 1), self._output(answer.before, command, typed_marker))

    def _output(self, before: str, command: str, typed_marker: str) -> str:
        """The command's own output: after the echoed command line (a prompt may precede it), without noise."""
        lines = before.split("\n")
        echoed = [i for i, line in enumerate(lines) if typed_marker in line]
        if echoed:
            lines = lines[echoed[-1] + 1:]
        elif lines and command in lines[0]:
            lines = lines[1:]  # an echo that the terminal broke apart still starts with the command
        if self.dialect.noise is not None:
            lines = [line for line in lines if not self.dialect.noise.match(line)]
        return "\n".join(lines).strip("\n")
