"""A QMP client: JSON commands over QEMU's monitor socket, events skipped.

Small on purpose: the harness needs `cont`, `stop`, `system_reset`, `system_powerdown`, `quit`
and `query-status`, each answered by one `return` or `error` object.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import BenchError


class Qmp:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(str(path))
                break
            except OSError as exc:
                self._sock.close()
                if time.monotonic() > deadline:
                    raise BenchError(f"QEMU's QMP socket {path} did not come up within {timeout:g} s ({exc})") from exc
                time.sleep(0.05)
        self._sock.settimeout(timeout)
        self._file = self._sock.makefile("rwb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        try:
            line = self._file.readline()
        except OSError as exc:  # QEMU exiting right after it opened the socket resets the connection
            raise BenchError(f"QEMU closed its QMP socket {self.path} ({exc})") from exc
        if not line:
            raise BenchError(f"QEMU closed its QMP socket {self.path}")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self._file.write(json.dumps(message).encode() + b"\n")
            self._file.flush()
            while True:
                reply = self._read()
                if "return" in reply:
                    return reply["return"]
                if "error" in reply:
                    raise BenchError(f"QMP {command} failed: {reply['error'].get('desc', reply['error'])}")
        except (OSError, ValueError) as exc:
            raise BenchError(f"QMP {command} on {self.path} failed: {exc}") from exc

    def close(self) -> None:
        for closable in (self._file, self._sock):
            with contextlib.suppress(OSError):
                closable.close()
