"""The verbs every switch gets: on, off, cycle with the bench's least off time, a status that says
'unknown' and why, a read-back that disagrees is a bench error, and inverted wiring."""

from __future__ import annotations

import time

import pytest

from harness.errors import BenchError
from harness.power.base import Inverted, maybe_inverted
from harness.power.control import PowerControl


class Relay:
    """A switch double: remembers every set, reads back what it holds (or lies, or cannot tell)."""

    def __init__(self, *, readable: bool = True, stuck: bool | None = None) -> None:
        self.description = "test relay channel 2"
        self.readable, self.stuck = readable, stuck
        self.state = False
        self.calls: list[tuple[bool, float]] = []

    def set(self, on: bool) -> None:
        self.calls.append((on, time.monotonic()))
        self.state = on if self.stuck is None else self.stuck

    def get(self) -> bool | None:
        return self.state if self.readable else None


def test_cycle_keeps_the_board_off_for_the_least_off_time() -> None:
    relay = Relay()
    PowerControl(relay, off_time_s=0.2).cycle()
    (off, off_at), (on, on_at) = relay.calls
    assert (off, on) == (False, True) and on_at - off_at >= 0.2


def test_status_reads_back_or_says_why_it_cannot() -> None:
    relay = Relay()
    control = PowerControl(relay)
    control.on()
    assert str(control.status()) == "on"
    control.off()
    assert str(control.status()) == "off"
    assert str(PowerControl(Relay(readable=False)).status()) == "unknown (this switch cannot report its state)"


def test_a_read_back_that_disagrees_is_a_bench_error_naming_the_switch() -> None:
    with pytest.raises(BenchError, match="test relay channel 2 was switched on but reads back off"):
        PowerControl(Relay(stuck=False)).on()


def test_inverted_wiring_drives_the_output_the_other_way_and_reads_back_the_board() -> None:
    relay = Relay()
    board = maybe_inverted(relay, True)
    assert isinstance(board, Inverted) and board.description == "test relay channel 2 (inverted)"
    PowerControl(board).on()
    assert relay.state is False and board.get() is True
    assert maybe_inverted(relay, False) is relay


def test_a_switch_that_only_remembers_what_it_was_told_is_reported_unknown() -> None:
    relay = Relay(stuck=False)  # it would read back wrong, but it does not really read anything back
    relay.reads_back = False  # type: ignore[attr-defined]
    control = PowerControl(relay)
    control.on()  # no read-back check: there is nothing to compare with
    assert str(control.status()) == ("unknown (this switch cannot report its state; "
                                     "last switched off from here)")
