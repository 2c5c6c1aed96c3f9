"""A device double behind a raw pty: the driver opens the pty's path as it would open the device.

The pty is raw (the line discipline would eat or translate bytes like 0x11/0x13 and 0x0D); one
reader thread hands everything the driver writes to `received`, and `write` answers. Subclasses
implement only what the device does with the bytes.
"""

from __future__ import annotations

import abc
import contextlib
import os
import select
import threading
import time
import tty
from types import TracebackType
from typing import Self


class PtyDevice(abc.ABC):
    def __init__(self, name: str) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.pty_path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)

    def start(self) -> None:
        """Start reading; subclasses call it last in their __init__, once their state exists."""
        self._reader.start()

    @abc.abstractmethod
    def received(self, data: bytes) -> None:
        """What the device does with the bytes the driver wrote; each device double says."""

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def close(self) -> None:
        self._stop.set()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                time.sleep(0.02)  # the slave stays open in this object, so EIO only comes while closing
                continue
            self.received(data)
