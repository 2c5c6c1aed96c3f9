"""The one deadline every polling loop uses: remaining time, expiry, and sleeps on a fixed grid.

A fake clock makes the rules exact: no test here waits.
"""

from __future__ import annotations

import pytest

from harness.deadline import Deadline


class FakeClock:
    """Time that moves only when slept through or advanced by hand (a try that takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 9))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_remaining_and_expired_follow_the_clock(clock: FakeClock) -> None:
    deadline = Deadline(2.0, clock=clock, sleep=clock.sleep)
    assert (deadline.remaining(), deadline.expired, deadline.elapsed()) == (2.0, False, 0.0)
    clock.now += 1.5
    assert (deadline.remaining(), deadline.expired, deadline.elapsed()) == (0.5, False, 1.5)
    clock.now += 1.0
    assert (deadline.remaining(), deadline.expired) == (0.0, True), "remaining never goes negative"


def test_sleeps_land_on_a_grid_so_slow_tries_do_not_push_later_ones_back(clock: FakeClock) -> None:
    deadline = Deadline(10.0, clock=clock, sleep=clock.sleep)
    clock.now += 0.2  # a try that took 0.2 s
    assert deadline.sleep(1.0)
    assert clock.slept == [0.8] and deadline.elapsed() == 1.0
    clock.now += 1.7  # a try slower than the interval: the tick at 2 s is gone, the next is at 3 s
    assert deadline.sleep(1.0)
    assert clock.slept[-1] == pytest.approx(0.3) and deadline.elapsed() == pytest.approx(3.0)


def test_the_sleep_that_reaches_the_deadline_allows_one_last_try_then_none(clock: FakeClock) -> None:
    deadline = Deadline(1.25, clock=clock, sleep=clock.sleep)
    tries = 0
    while True:
        tries += 1
        if not deadline.sleep(0.5):
            break
    assert tries == 4, "tries at 0, 0.5, 1.0 and the last at the limit, 1.25"
    assert clock.slept == [0.5, 0.5, 0.25], "never sleeps past the deadline"


def test_a_zero_deadline_gives_exactly_one_try(clock: FakeClock) -> None:
    deadline = Deadline(0, clock=clock, sleep=clock.sleep)
    assert deadline.expired and not deadline.sleep(0.1)
    assert clock.slept == []


@pytest.mark.parametrize(("seconds", "interval", "message"), [
    (-1.0, 0.5, "must be 0 or more"), (1.0, 0.0, "interval must be more than 0"),
    (1.0, -0.5, "interval must be more than 0")])
def test_nonsense_limits_are_refused_by_name(seconds: float, interval: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Deadline(seconds).sleep(interval)


def test_the_real_clock_sleeps_for_real() -> None:
    deadline = Deadline(0.05)
    while deadline.sleep(0.02):
        pass
    assert deadline.expired and deadline.elapsed() >= 0.05
