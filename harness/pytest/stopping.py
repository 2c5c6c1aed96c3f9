"""Every way a run stops leaves the board off and the record written.

pytest turns Ctrl-C (SIGINT) into KeyboardInterrupt and still tears the fixtures down and runs
`pytest_sessionfinish`, so the board is switched off, the console log closed and the report and
JUnit written. SIGTERM (a CI cancel, `timeout`) and SIGHUP (a closed terminal or SSH session)
would end the process with none of that; here they take the same path. Only the first signal
interrupts: more while the board is being switched off are noted and ignored, so a second
Ctrl-C cannot leave a board powered (a third one forces the way out). A signal the run was
started with ignored (`nohup`, a background job's SIGINT) stays ignored.

Against SIGKILL nothing in the process can help: child processes die through PR_SET_PDEATHSIG
(harness/transports/children.py), and the next run on the bench switches the board off before
anything else (harness/rig.py).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FORCE_AFTER = 3  # Ctrl-C presses that force the way out while the board is being switched off


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal; pytest handles it exactly as Ctrl-C."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")


class SignalGuard:
    """Turns SIGINT, SIGTERM and SIGHUP into one RunInterrupted, in the main thread."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._previous: dict[int, object] = {}

    @property
    def first(self) -> str | None:
        return self.received[0] if self.received else None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals are delivered to the main thread only; an embedded run keeps its host's handlers
        for number in HANDLED:
            if signal.getsignal(number) is signal.SIG_IGN:
                continue
            self._previous[number] = signal.signal(number, self._handle)

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        self.received.append(name)
        if len(self.received) == 1 or (number == signal.SIGINT and self.received.count("SIGINT") >= FORCE_AFTER):
            raise RunInterrupted(name)
        sys.stderr.write(f"\nhil: {name} received while stopping: switching the board off and writing the record "
                         "first\n")
