"""What people and the session do with any switch: on, off, cycle with the bench's least off time,
and a status that says "unknown" (and why) when the device cannot tell.

Every backend only implements `set` and `get`; the verbs, the read-back check and the minimum
off-time live here once. A switch that reads back a state other than the one just set is a bench
error naming it: a relay that clicks the wrong way must not be mistaken for a board that is dead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.errors import BenchError
from harness.power.base import PowerSwitch


@dataclass(frozen=True)
class PowerStatus:
    state: str  # "on", "off" or "unknown"
    why: str = ""  # for "unknown": why the device cannot tell

    def __str__(self) -> str:
        return self.state + (f" ({self.why})" if self.why else "")


class PowerControl:
    def __init__(self, switch: PowerSwitch, *, off_time_s: float = 2.0) -> None:
        self.switch = switch
        self.off_time_s = off_time_s

    @property
    def description(self) -> str:
        return self.switch.description

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    def cycle(self) -> None:
        """Off, the bench's least off time (capacitors drain), on."""
        self._set(False)
        time.sleep(self.off_time_s)
        self._set(True)

    @property
    def reads_back(self) -> bool:
        """False for a switch whose `get` only remembers what it was told (an LCUS module cannot answer)."""
        return bool(getattr(self.switch, "reads_back", True))

    def status(self) -> PowerStatus:
        state = self.switch.get()
        if state is None or not self.reads_back:
            last = "" if state is None else f"; last switched {'on' if state else 'off'} from here"
            why = getattr(self.switch, "unknown_reason", None) or "this switch cannot report its state"
            return PowerStatus("unknown", f"{why}{last}")
        return PowerStatus("on" if state else "off")

    def _set(self, on: bool) -> None:
        self.switch.set(on)
        read_back = self.switch.get() if self.reads_back else None
        if read_back is not None and read_back != on:
            raise BenchError(f"{self.switch.description} was switched {'on' if on else 'off'} but reads back "
                             f"{'on' if read_back else 'off'}: check the relay and its channel")
