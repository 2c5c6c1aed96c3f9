"""A virtual board behind a pty: plays a transcript at power-on and answers at the U-Boot prompt.

The harness opens the pty exactly as it opens a USB UART, so every driver above the transport
is exercised unchanged. The board is silent while off, starts from the first stage at power-on
and forgets everything (environment, prompt, half-typed line) at power-off, like hardware.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Iterator
from typing import Any

from harness.sim.transcript import StageScript, Transcript

CTRL_C = 0x03


class _Template(dict[str, Any]):
    """format_map() source that leaves unknown `{names}` as they are instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class VirtualBoard:
    def __init__(self, transcript: Transcript, *, ram_mb: int = 8192, time_scale: float = 0.05) -> None:
        self.transcript = transcript
        self.time_scale = time_scale
        values: dict[str, Any] = dict(transcript.vars)
        values.update(ram_mb=ram_mb, ram_gib=_gib(ram_mb), channel_mb=ram_mb // 4)
        self.values = _Template(values)
        self.prompt = str(values.get("prompt", "=> "))
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or newline translation: the firmware echoes by itself
        self.pty_path = os.ttyname(self._slave)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._generation = 0  # bumped at each power change; a boot thread of an old one stops
        self._powered = False
        self._state = "off"
        self._interrupted = threading.Event()
        self._line = bytearray()
        self._env: dict[str, str] = {}
        self._status = 0
        self.power_on_count = 0
        self._input = threading.Thread(target=self._read_keys, name="sim-keys", daemon=True)
        self._input.start()

    # -- power ---------------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def state(self) -> str:
        return self._state

    def power(self, on: bool) -> None:
        if on == self._powered:
            return
        self._generation += 1
        self._powered = on
        self._interrupted.clear()
        self._line.clear()
        self._env = {}
        self._status = 0
        self._state = "off"
        if on:
            self.power_on_count += 1
            generation = self._generation
            threading.Thread(target=self._boot, args=(generation,), name="sim-boot", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._generation += 1
        self._powered = False
        self._input.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- output --------------------------------------------------------------------------------
    def _alive(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _emit(self, text: str, generation: int | None = None) -> bool:
        if generation is not None and not self._alive(generation):
            return False
        data = text.replace("\n", "\r\n").encode("utf-8", errors="replace")
        with self._write_lock:
            try:
                os.write(self._master, data)
            except OSError:
                return False
        return True

    def _sleep(self, seconds: float, generation: int) -> bool:
        """Sleep in board time; False once the board lost power meanwhile."""
        if seconds > 0:
            self._stop.wait(seconds * self.time_scale)
        return self._alive(generation)

    def _lines(self, stage: StageScript) -> Iterator[str]:
        for line in stage.lines:
            yield line.format_map(self.values)

    # -- boot ----------------------------------------------------------------------------------
    def _boot(self, generation: int, first_stage: int = 0) -> None:
        for stage in self.transcript.stages[first_stage:]:
            self._state = stage.name
            for line in self._lines(stage):
                if not self._sleep(stage.delay_ms / 1000, generation) or not self._emit(line + "\n", generation):
                    return
            if stage.autoboot is not None:
                if self._countdown(stage, generation):
                    self._state = "u-boot-prompt"
                    self._emit("<INTERRUPT>\n" + self.prompt, generation)
                    return
                if not self._alive(generation):
                    return
        self._state = "booted"

    def _countdown(self, stage: StageScript, generation: int) -> bool:
        """Print the countdown; True when a key the variant honours stopped it."""
        assert stage.autoboot is not None
        auto = stage.autoboot
        self._state = "autoboot"
        remaining = int(auto.seconds)
        self._emit(auto.text.format(n=remaining), generation)
        ticks = max(1, round(auto.seconds / 0.01))
        for tick in range(ticks):
            if self._interrupted.is_set():
                self._emit("\n", generation)
                return True
            if not self._sleep(0.01, generation):
                return False
            left = int(auto.seconds - (tick + 1) * 0.01 + 0.999)
            if left != remaining:
                remaining = left
                self._emit(f"\b\b\b{remaining:2d} ", generation)
        self._emit("\n", generation)
        return False

    # -- keyboard --------------------------------------------------------------------------------
    def _read_keys(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                time.sleep(0.05)
                continue
            if self._powered:
                for byte in data:
                    self._key(byte)

    def _key(self, byte: int) -> None:
        state = self._state
        if state == "autoboot":
            variant = self.transcript.stage("u-boot")
            any_key = variant is not None and variant.autoboot is not None and variant.autoboot.variant == "mainline"
            if byte == CTRL_C or any_key:
                self._interrupted.set()
        elif state == "u-boot-prompt":
            self._prompt_key(byte)
        # Keys before U-Boot runs, or after the kernel took over, fall on deaf ears.

    def _prompt_key(self, byte: int) -> None:
        generation = self._generation
        if byte == CTRL_C:
            self._line.clear()
            self._emit("<INTERRUPT>\n" + self.prompt, generation)
        elif byte in (0x0D, 0x0A):
            command = self._line.decode(errors="replace").strip()
            self._line.clear()
            self._emit("\n", generation)
            if command:
                self._run(command, generation)
            if self._state == "u-boot-prompt":
                self._emit(self.prompt, generation)
        elif byte in (0x08, 0x7F):
            if self._line:
                self._line.pop()
                self._emit("\b \b", generation)
        elif byte >= 0x20:
            self._line.append(byte)
            self._emit(chr(byte), generation)

    # -- U-Boot commands -------------------------------------------------------------------------
    def _run(self, command_line: str, generation: int) -> None:
        for command in (c.strip() for c in command_line.split(";")):
            if command:
                self._status = self._command(self._expand(command), generation)

    def _expand(self, command: str) -> str:
        command = command.replace("$?", str(self._status))
        for name, value in self._env.items():
            command = command.replace("${" + name + "}", value).replace("$" + name, value)
        return command

    def _command(self, command: str, generation: int) -> int:
        words = command.split()
        name = words[0]
        canned = self.transcript.commands.get(command) or self.transcript.commands.get(name)
        if canned is not None:
            self._emit("".join(line.format_map(self.values) + "\n" for line in canned), generation)
            return 0
        if name == "echo":
            self._emit(" ".join(words[1:]) + "\n", generation)
            return 0
        if name == "setenv" and len(words) >= 2:
            self._env[words[1]] = " ".join(words[2:])
            return 0
        if name == "printenv":
            names = words[1:] or sorted(self._env)
            missing = [n for n in names if n not in self._env]
            self._emit("".join(f"{n}={self._env[n]}\n" for n in names if n in self._env), generation)
            for n in missing:
                self._emit(f"## Error: \"{n}\" not defined\n", generation)
            return 1 if missing else 0
        if name == "boot":
            names = [s.name for s in self.transcript.stages]
            self._state = "booting"
            threading.Thread(target=self._boot, args=(generation, names.index("u-boot") + 1),
                             name="sim-boot", daemon=True).start()
            return 0
        if name == "reset":
            self._emit("resetting ...\n", generation)
            self.power(False)
            self.power(True)
            return 0
        self._emit(f"Unknown command '{name}' - try 'help'\n", generation)
        return 1


def _gib(megabytes: int) -> str:
    gib = megabytes / 1024
    return f"{gib:g}"
