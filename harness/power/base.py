"""Power backends: one module per way of switching a board, each a bench section, a driver and a factory.

The session only ever calls `set(True/False)`; whether a relay clicks, a plug is asked over
HTTP or a virtual board is told, is the bench's business. A backend module declares:

- its bench section, a `PowerSection` subclass with `kind: Literal["<kind>"]` and its own fields;
- a driver with `set`/`get` (a `PowerSwitch`);
- `BACKEND = PowerBackend(section=..., build=...)`, named by one line in the `talos_harness.power`
  entry-point group (`<kind> = "package.module:BACKEND"`).

The bench schema offers exactly the registered kinds (harness.config.power_support), and the rig
builds every switch through harness.power.registry, so adding a kind edits nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from harness.config.power_support import PowerSection, kind_of
from harness.errors import ConfigError

__all__ = ["PowerBackend", "PowerContext", "PowerSection", "PowerSwitch", "QemuControl", "QmpClient"]


class PowerSwitch(Protocol):
    description: str

    def set(self, on: bool) -> None:
        """Switch the board's supply; must not return before the switch has happened."""

    def get(self) -> bool | None:
        """The supply's state if the switch can tell, else None. A switch whose `get` only remembers
        what it was told sets a class attribute `reads_back = False` (harness.power.control)."""


class QmpClient(Protocol):
    """What a switch needs of a QMP connection: one command at a time, its `return` value back."""

    def execute(self, command: str, **arguments: Any) -> Any: ...


class QemuControl(Protocol):
    """The running QEMU machine as a switch sees it; `qmp` is None once QEMU is gone."""

    @property
    def qmp(self) -> QmpClient | None: ...

    @property
    def qmp_path(self) -> Path: ...


def _no_secrets(name: str) -> str:
    raise ConfigError(f"no secret '{name}' here: this switch was built without the bench's secrets")


@dataclass(frozen=True)
class PowerContext:
    """What only the rig knows when it builds a switch: which bench, and the QEMU machine if there is one.

    A bench section describes wiring; a live machine is not wiring, so it comes in here instead.
    """

    bench: str
    qemu: QemuControl | None = None
    # The bench's secret by name (its `secrets:` maps names to environment variables): credentials of
    # a plug or a PDU come from here, never from the bench file. Raises ConfigError when unset.
    secret: Callable[[str], str] = _no_secrets


Section = TypeVar("Section", bound=PowerSection)


@dataclass(frozen=True)
class PowerBackend(Generic[Section]):
    """A registered power kind: its bench section and the factory that turns a section into a switch.

    `build` may raise ConfigError for a section it cannot serve in this context; it must not touch
    the hardware (the rig switches off first thing, inside its own error handling).
    """

    section: type[Section]
    build: Callable[[Section, PowerContext], PowerSwitch]

    @property
    def kind(self) -> str:
        return kind_of(self.section)


class Inverted:
    """A switch wired active-low or through a normally-closed contact: `on` drives the output off.

    Backends whose section has `invert: true` wrap their driver in this instead of each inverting
    on its own; the read-back is inverted the same way, so `get()` still means "the board has power".
    """

    def __init__(self, switch: PowerSwitch) -> None:
        self.switch = switch
        self.description = f"{switch.description} (inverted)"
        self.reads_back = bool(getattr(switch, "reads_back", True))
        self.unknown_reason: str | None = getattr(switch, "unknown_reason", None)

    def set(self, on: bool) -> None:
        self.switch.set(not on)

    def get(self) -> bool | None:
        state = self.switch.get()
        return None if state is None else not state


def maybe_inverted(switch: PowerSwitch, invert: bool) -> PowerSwitch:
    return Inverted(switch) if invert else switch
