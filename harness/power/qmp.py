"""The QEMU board's power switch: QMP commands to the machine the rig started.

On = reset (after the first power-on) and continue; off = freeze (`stop`). QEMU starts paused,
so the first `cont` is the first power-on and each later one is a fresh boot, like a relay.

The section carries no wiring: the machine is live state only the rig has, so the factory takes
it from the `PowerContext` and refuses a bench that has none.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from harness.errors import BenchError, ConfigError
from harness.power.base import PowerBackend, PowerContext, PowerSection, QemuControl, QmpClient


class QmpSection(PowerSection):
    """`power: {kind: qmp}`: the built-in QEMU bench's switch (the rig uses it when a qemu bench names none)."""

    kind: Literal["qmp"] = "qmp"

    bench_kinds: ClassVar[frozenset[str]] = frozenset({"qemu"})
    example: ClassVar[str | None] = "{kind: qmp}"


class QmpPower:
    """Power through QMP: on = reset (after the first power-on) and continue; off = freeze."""

    def __init__(self, machine: QemuControl) -> None:
        self.machine = machine
        self.description = f"QEMU power over QMP ({machine.qmp_path})"
        self._started = False

    def _qmp(self) -> QmpClient:
        if self.machine.qmp is None:
            raise BenchError("QEMU is not running")
        return self.machine.qmp

    def set(self, on: bool) -> None:
        qmp = self._qmp()
        if on:
            if self._started:
                qmp.execute("system_reset")
            qmp.execute("cont")
            self._started = True
        else:
            qmp.execute("stop")

    def get(self) -> bool | None:
        return bool(self._qmp().execute("query-status").get("running"))


def build(section: QmpSection, context: PowerContext) -> QmpPower:
    """The switch of the machine in `context`; a bench without a QEMU machine cannot have one."""
    if context.qemu is None:
        raise ConfigError(f"bench '{context.bench}': power kind 'qmp' switches the QEMU board the harness starts "
                          "(--bench qemu); this bench has no QEMU machine")
    return QmpPower(context.qemu)


BACKEND = PowerBackend(section=QmpSection, build=build)
