"""Mask secrets in console bytes before anything stores them.

The kernel prints its own command line, and an Omni-generated one carries the join token
(`siderolink.api=...?jointoken=...`); a bench's secrets (by environment variable) can show up
too. Masking happens on the reader's bytes, before the raw log, the people's log, the expect
buffer and so every error message and report see them. A secret split across two reads is
caught by holding back a tail that could be its beginning until the next read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.config.bench import JOIN_TOKEN_CHARS, JOIN_TOKEN_KEY, join_tokens

if TYPE_CHECKING:
    from harness.config.bench import Bench

MASK = b"***"
_TOKEN_KEY = JOIN_TOKEN_KEY.encode()
_TOKEN = re.compile(f"({JOIN_TOKEN_KEY}){JOIN_TOKEN_CHARS}+".encode())
_TOKEN_OPEN = re.compile(f"{JOIN_TOKEN_KEY}{JOIN_TOKEN_CHARS}*\\Z".encode())
_LONGEST_TOKEN = 1024  # a value longer than this is masked in pieces rather than held back forever
MIN_SECRET = 4  # shorter values would mask ordinary words


def secrets_of(bench: Bench) -> list[str]:
    """What must never be shown for this bench: its secrets' values (from the environment variables it
    names; unset ones are skipped, the bench reports those when it reads them) and every join token
    in its kernel arguments (a token is masked by its key anyway; listing the value also catches it
    where the key is cut off, as in a shortened repr)."""
    values = [value for variable in bench.secrets.values() if (value := os.environ.get(variable))]
    if bench.sim is not None:
        values += join_tokens(" ".join(bench.sim.kernel_args))
    return values


class SecretMasker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s.encode() for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        keep = self._unfinished_tail(data)
        self._pending = data[len(data) - keep:] if keep else b""
        return self._mask(data[: len(data) - keep])

    def flush(self) -> bytes:
        data, self._pending = self._mask(self._pending), b""
        return data

    def _mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, MASK)
        return _TOKEN.sub(rb"\1" + MASK, data)

    def _unfinished_tail(self, data: bytes) -> int:
        """How many trailing bytes could still become (part of) a secret with the next read."""
        keep = 0
        if (m := _TOKEN_OPEN.search(data, max(0, len(data) - _LONGEST_TOKEN - len(_TOKEN_KEY)))) is not None:
            keep = len(data) - m.start()
        for word in (_TOKEN_KEY, *self.secrets):
            for n in range(min(len(word) - 1, len(data)), 0, -1):
                if data.endswith(word[:n]):
                    keep = max(keep, n)
                    break
        return keep

    def text(self, text: str) -> str:
        """Mask a message or a report line that did not come through the console."""
        return self._mask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
