"""The far side of a pty, played by a test: each line typed into it gets an answer, written in
pieces as a UART delivers it (so the console takes it in many reads)."""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable


class LinePeer:
    """Answers each typed line (whitespace stripped) with `reply(line)`; `piece` bytes every `gap` s."""

    def __init__(self, reply: Callable[[str], str], *, piece: int = 1 << 20, gap: float = 0.0) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.reply = reply
        self.piece, self.gap = piece, gap
        self.typed: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        pending = b""
        while True:
            try:
                pending += os.read(self.master, 1024)
            except OSError:
                return  # closed
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                line = raw.decode().strip()
                self.typed.append(line)
                answer = self.reply(line).encode()
                for start in range(0, len(answer), self.piece):
                    os.write(self.master, answer[start:start + self.piece])
                    time.sleep(self.gap)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)
