"""The `command` power kind: the bench's own shell commands switch the board, and the runner other CLI kinds share.

For a switch no backend knows (a lab PDU script, `ssh pi gpioset ...`, a vendor CLI) the bench names
an `on` and an `off` command, and optionally a `state` command:

    power: {kind: command, on: "relayctl 3 on", off: "relayctl 3 off", state: "relayctl 3 get", timeout_s: 10}

`state` tells the board's supply only when it exits 0 and prints exactly `on`/`off`/`1`/`0` (case and
surrounding whitespace aside); anything else reads as "unknown", because a script that prints a
paragraph cannot be trusted to have meant one word of it. A command that exits non-zero while
switching is a BenchError quoting the command and the tail of its output; one that outlives
`timeout_s` is killed with its whole process group (a shell's children too) and is a BenchError.

`run_tool` is also what the uhubctl and ykush kinds run their tools with: one place where a
child process gets a deadline, is killed as a group, and a missing executable becomes advice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, model_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch, maybe_inverted

DEFAULT_TIMEOUT_S = 10.0
TAIL_LINES = 12
TAIL_CHARS = 1500
STATE_WORDS = {"on": True, "1": True, "off": False, "0": False}


@dataclass(frozen=True)
class ToolRun:
    """A finished child process: what it printed, and how it ended."""

    argv: str  # as a person would type it, for messages
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def tail(text: str, *, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last lines of a tool's output: where the reason for a failure usually is, without flooding a report."""
    kept = "\n".join(line.rstrip() for line in text.strip().splitlines()[-lines:])
    return kept if len(kept) <= chars else "..." + kept[-chars:]


def _kill_group(process: subprocess.Popen[str]) -> None:
    # The child leads its own session, so the group holds everything it started (`sh -c` and its pipeline).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_tool(command: Sequence[str] | str, *, timeout_s: float, device: str, missing: str | None = None,
             env: dict[str, str] | None = None) -> ToolRun:
    """Run `command` (an argv, or a string for /bin/sh) and return once it has ended, or raise BenchError.

    The child runs in a new session so that a timeout kills its children too: `subprocess.run`
    kills only the direct child, and a grandchild still holding the output pipe would then hang
    the harness in the read that follows. `device` names the switch in messages; `missing` is
    the advice when the executable does not exist (which package or project provides it).
    """
    shell = isinstance(command, str)
    shown = command if isinstance(command, str) else " ".join(command)
    try:
        process = subprocess.Popen(command, shell=shell, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                   env=None if env is None else {**os.environ, **env})
    except FileNotFoundError as exc:
        raise BenchError(f"{device}: cannot run '{shown}': {missing or exc}") from exc
    except PermissionError as exc:
        raise BenchError(f"{device}: cannot run '{shown}': {exc} (is it executable?)") from exc
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill_group(process)
        try:
            stdout, stderr = process.communicate(timeout=2)
        except subprocess.TimeoutExpired:  # something escaped the group and holds the pipe; give up on its text
            stdout, stderr = "", ""
        raise BenchError(f"{device}: '{shown}' did not finish within {timeout_s:g} s and was killed; "
                         f"the switch may be hung or waiting for input"
                         + (f"; its output so far:\n{tail(stdout + stderr)}" if (stdout + stderr).strip() else "")
                         ) from exc
    finally:
        if process.poll() is None:
            _kill_group(process)
            process.wait()
    return ToolRun(shown, process.returncode, stdout or "", stderr or "")


def parse_state(output: str) -> bool | None:
    """`on`/`1` → True, `off`/`0` → False, anything else (chatter, nothing) → None."""
    return STATE_WORDS.get(output.strip().lower())


class ShellCommandSwitch:
    """A switch made of the bench's own shell commands; `get()` is None without a `state` command."""

    def __init__(self, on: str, off: str, state: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 name: str = "") -> None:
        self.on_command, self.off_command, self.state_command = on, off, state
        self.timeout_s = timeout_s
        self.description = f"power command{f' {name}' if name else ''} (on: {on!r})"

    def set(self, on: bool) -> None:
        command = self.on_command if on else self.off_command
        done = run_tool(command, timeout_s=self.timeout_s, device=self.description)
        if done.returncode != 0:
            raise BenchError(f"{self.description}: switching {'on' if on else 'off'} with '{command}' failed "
                             f"(exit status {done.returncode}); last output:\n{tail(done.output) or '(none)'}")

    def get(self) -> bool | None:
        if self.state_command is None:
            return None
        done = run_tool(self.state_command, timeout_s=self.timeout_s, device=self.description)
        return parse_state(done.stdout) if done.returncode == 0 else None


class ShellCommandSection(PowerSection):
    """A bench switched by shell commands of its own: `on`, `off`, and optionally `state`.

    The commands run through /bin/sh in the harness's working directory, so give absolute paths.
    There is no `channel`: the commands name whatever outlet they switch. `invert` swaps what
    `on` and `off` mean, for a command pair wired through a normally-closed contact. YAML reads
    an unquoted `on:`/`off:` key as a boolean; such keys are taken back as the names they were.
    """

    kind: Literal["command"]
    on: str = Field(min_length=1, description="shell command that powers the board; exit 0 when done")
    off: str = Field(min_length=1, description="shell command that cuts the board's power; exit 0 when done")
    state: str | None = Field(default=None, min_length=1,
                              description="shell command printing on/off/1/0 with exit 0; otherwise state is unknown")
    timeout_s: PositiveFloat = Field(default=DEFAULT_TIMEOUT_S, description="each command is killed after this")
    invert: bool = False

    example: ClassVar[str | None] = '{kind: command, on: "...", off: "...", state: "..."}'

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans_are_the_on_and_off_keys(cls, data: Any) -> Any:
        """`on: x` in YAML 1.1 is `{True: x}`; without this the natural spelling would be refused."""
        if isinstance(data, dict) and any(key is True or key is False for key in data):
            return {("on" if key is True else "off" if key is False else key): value for key, value in data.items()}
        return data


def build(section: ShellCommandSection, context: PowerContext) -> PowerSwitch:
    """The commands are only run at `set`/`get`; nothing is started here."""
    switch = ShellCommandSwitch(section.on, section.off, section.state, timeout_s=section.timeout_s,
                                name=f"of bench {context.bench}")
    return maybe_inverted(switch, section.invert)


BACKEND = PowerBackend(section=ShellCommandSection, build=build)
