"""A Numato USB relay module behind a pty, answering its text console the way the board does.

The driver opens the pty as it would open the module's /dev/ttyACMn, so what is tested is the
exact conversation: the command line ending in `\\r`, the module's echo, its `on`/`off` answer to
`relay read`, and the `>` prompt that ends every answer. Relays are numbered from 0, 10 and up as
letters (A = 10). A command for a relay the model does not have is echoed and prompted with no
answer, which is how the driver finds out; other unknown commands get `Invalid command` text.

For fault tests the module can be switched to `silent` (reads, never answers, as a hung or wrong
device) or `garbage` (answers line noise with no prompt, as a port at the wrong device).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

from harness.sim.pty_device import PtyDevice

MODELS = (1, 2, 4, 8, 16, 32)  # the channel counts Numato sells
Mode = Literal["normal", "silent", "garbage"]
EOL = b"\n\r"  # what the module ends its lines with
GARBAGE = b"\x00\xfe\x1b[?\x92\xa0 #@!\xff"


def relay_index(name: str) -> int | None:
    """`0`..`9`, `A`..`V` (either case) → 0..31; anything else → None."""
    if len(name) != 1:
        return None
    if name.isdigit():
        return int(name)
    upper = name.upper()
    return ord(upper) - ord("A") + 10 if "A" <= upper <= "V" else None


class NumatoRelayDouble(PtyDevice):
    """A module with `channels` relays (1, 2, 4, 8, 16 or 32), all off at start, as at power-up.

    `on_change(channel, on)` is called from the reader thread for every accepted `relay on/off`
    (repeats included, as the firmware re-drives its coil); an exception from it is kept in
    `.callback_errors`. `.commands` lists every command line received, accepted or not.
    """

    def __init__(self, channels: int = 8, on_change: Callable[[int, bool], None] | None = None,
                 *, version: str = "00000008") -> None:
        if channels not in MODELS:
            raise ValueError(f"Numato relay modules have {', '.join(map(str, MODELS))} channels, not {channels}")
        self.channels = channels
        self.on_change = on_change
        self.version = version
        self.mode: Mode = "normal"
        self.states: dict[int, bool] = dict.fromkeys(range(channels), False)
        self.commands: list[str] = []
        self.callback_errors: list[BaseException] = []
        self._line = bytearray()
        self._changed = threading.Condition()
        super().__init__("sim-numato")  # raw, so the \r ending each command reaches the double untranslated
        self.start()

    def wait_commands(self, count: int, timeout: float = 2.0) -> list[str]:
        """Block until `count` command lines have arrived in total; the commands so far either way."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.commands) >= count, timeout)
            return list(self.commands)

    def received(self, data: bytes) -> None:
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self.mode == "silent":
            return
        if self.mode == "garbage":
            self.write(GARBAGE)
            return
        for byte in data:
            if byte == 0x0D:
                command = self._line.decode("ascii", errors="replace")
                self._line.clear()
                self._answer(command)
            elif byte != 0x0A:
                self._line.append(byte)

    def _answer(self, command: str) -> None:
        # The board echoes what was typed, then its answer line (if any), then the prompt.
        reply = command.encode("ascii", errors="replace") + EOL
        words = command.split()
        accepted: tuple[int, bool] | None = None
        if words == ["ver"]:
            reply += self.version.encode() + EOL
        elif len(words) == 3 and words[0] == "relay" and words[1] in ("on", "off", "read"):
            channel = relay_index(words[2])
            if channel is not None and channel < self.channels:
                if words[1] == "read":
                    reply += (b"on" if self.states[channel] else b"off") + EOL
                else:
                    accepted = (channel, words[1] == "on")
                    self.states[channel] = accepted[1]
            # else: a relay this model lacks: echo and prompt, no answer (as the firmware ignores it)
        elif words:
            reply += b"Invalid command" + EOL
        if accepted is not None and self.on_change is not None:
            try:
                self.on_change(*accepted)
            except Exception as exc:
                self.callback_errors.append(exc)
        self.write(reply + b">")
        # Recorded after the callback and the reply, so whoever waited for the command also sees its effect.
        with self._changed:
            self.commands.append(command)
            self._changed.notify_all()
