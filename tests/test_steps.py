"""Steps: every timed driver action as a `[hil] step` line in console.log and a JSON line in events.jsonl.

The report's timeline and the trend read events.jsonl, so its fields are pinned here; the blame of an
outcome follows the verdicts (a BoardFailure fails, anything else errors); secrets never get in.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from pathlib import Path

import pytest

from harness.console.log import ConsoleLog
from harness.console.secrets import SecretMasker
from harness.errors import BenchError, BoardFailure, ConsoleTimeout
from harness.steps import StepEvent, StepRecorder, step

FIELDS = {"event", "id", "parent", "depth", "name", "args", "start_s", "start", "duration_s", "outcome", "detail",
          "error"}


class Ticker:
    """A clock that advances a fixed amount each time it is read: durations become exact."""

    def __init__(self, origin: float = 50.0, tick: float = 0.25) -> None:
        self.now = origin
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_step_is_one_json_line_with_every_field(tmp_path: Path) -> None:
    recorder = StepRecorder(tmp_path / "events.jsonl", origin=50.0, clock=Ticker())
    with recorder.step("power on", number=1) as current:
        current.detail = "relay closed"
    (event,) = _lines(tmp_path / "events.jsonl")  # written when the step ends, before the recorder closes
    assert set(event) == FIELDS
    assert event["event"] == "step" and event["name"] == "power on" and event["args"] == {"number": 1}
    assert (event["id"], event["parent"], event["depth"]) == (1, None, 0)
    assert (event["start_s"], event["duration_s"]) == (0.25, 0.25)  # origin 50; read at 50.25 and 50.5
    assert (event["outcome"], event["detail"], event["error"]) == ("pass", "relay closed", None)
    assert datetime.fromisoformat(str(event["start"])).tzinfo is not None, "wall-clock time with its offset"


def test_nested_steps_carry_their_parent_and_depth(tmp_path: Path) -> None:
    recorder = StepRecorder(tmp_path / "events.jsonl")
    with recorder.step("reach", stage="kernel"):
        with recorder.step("u-boot command", command="boot"), recorder.step("expect", what="prompt"):
            pass
        with recorder.step("expect stage", stage="kernel"):
            pass
    with recorder.step("power off"):
        pass
    events = {e["name"]: e for e in _lines(tmp_path / "events.jsonl")}
    assert [e["name"] for e in _lines(tmp_path / "events.jsonl")] == [
        "expect", "u-boot command", "expect stage", "reach", "power off"], "written as each ends"
    reach = events["reach"]
    assert (reach["parent"], reach["depth"]) == (None, 0)
    assert (events["u-boot command"]["parent"], events["u-boot command"]["depth"]) == (reach["id"], 1)
    assert (events["expect"]["parent"], events["expect"]["depth"]) == (events["u-boot command"]["id"], 2)
    assert (events["expect stage"]["parent"], events["expect stage"]["depth"]) == (reach["id"], 1)
    assert (events["power off"]["parent"], events["power off"]["depth"]) == (None, 0), "the stack unwinds"
    assert len({e["id"] for e in events.values()}) == 5


@pytest.mark.parametrize(("error", "outcome"), [
    (BoardFailure("no DDR line"), "fail"),
    (ConsoleTimeout("timed out after 2.0 s waiting for the prompt"), "fail"),  # a BoardFailure too
    (BenchError("relay silent"), "error"),
    (ValueError("a bug"), "error"),
    (KeyboardInterrupt(), "error"),
])
def test_the_outcome_follows_the_blame_of_what_escaped(tmp_path: Path, error: BaseException, outcome: str) -> None:
    recorder = StepRecorder(tmp_path / "events.jsonl")
    with pytest.raises(type(error)) as raised, recorder.step("expect stage", stage="u-boot"):
        raise error
    assert raised.value is error, "the step re-raises what ended it, unchanged"
    (event,) = _lines(tmp_path / "events.jsonl")
    assert event["outcome"] == outcome
    assert event["error"] == type(error).__name__ + (f": {error}" if str(error) else "")


def test_an_inner_failure_caught_inside_leaves_the_outer_step_passing(tmp_path: Path) -> None:
    recorder = StepRecorder()
    with recorder.step("outer"), pytest.raises(BoardFailure), recorder.step("inner"):
        raise BoardFailure("once")
    assert [(e.name, e.outcome) for e in recorder.events] == [("inner", "fail"), ("outer", "pass")]


def test_secrets_are_masked_in_arguments_details_and_errors(tmp_path: Path) -> None:
    masker = SecretMasker(["hunter2-Very-Secret"])
    notes: list[str] = []
    recorder = StepRecorder(tmp_path / "events.jsonl", note=notes.append, mask=masker.text)
    with pytest.raises(BoardFailure), recorder.step(
            "u-boot command", command="setenv bootargs siderolink.api=https://x?jointoken=abc123XYZ",
            key="hunter2-Very-Secret") as current:
        current.detail = "typed hunter2-Very-Secret"
        raise BoardFailure("rejected hunter2-Very-Secret\nsecond line hunter2-Very-Secret")
    written = (tmp_path / "events.jsonl").read_text() + "\n".join(notes)
    assert "hunter2" not in written and "abc123XYZ" not in written
    (event,) = _lines(tmp_path / "events.jsonl")
    assert event["args"] == {"command": "setenv bootargs siderolink.api=https://x?jointoken=***", "key": "***"}
    assert (event["detail"], event["error"]) == ("typed ***", "BoardFailure: rejected ***")


def test_the_console_log_line_reads_as_a_sentence(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path)
    log.steps._clock = Ticker(log.started, 0.06)  # type: ignore[attr-defined] # exact durations
    with log.steps.step("u-boot command", command="version") as current:
        current.detail = "exit 0"
    with log.steps.step("power on", number=1, why=None):
        pass
    with pytest.raises(BenchError), log.steps.step("power off"):
        raise BenchError("relay silent\nsecond line")
    log.close()
    hil = [line.split("] ", 1)[1] for line in log.log_path.read_text().splitlines()]
    assert hil == ["[hil] step u-boot command 'version': pass in 0.06 s (exit 0)",
                   "[hil] step power on number=1: pass in 0.06 s",
                   "[hil] step power off: error in 0.06 s: BenchError: relay silent"]
    assert len(_lines(tmp_path / "events.jsonl")) == 3, "events.jsonl sits beside console.log"


def test_the_console_log_masks_join_tokens_even_without_the_benchs_secrets(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path)
    with log.steps.step("u-boot command", command="setenv bootargs jointoken=s3cr3tT0ken"):
        pass
    log.close()
    assert "s3cr3tT0ken" not in (tmp_path / "events.jsonl").read_text() + log.log_path.read_text()


def test_the_console_log_takes_the_consoles_masker(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, mask=SecretMasker(["omni-key-5d8e2a71"]).text)
    with log.steps.step("talos probe", key="omni-key-5d8e2a71"):
        pass
    log.close()
    assert "omni-key" not in (tmp_path / "events.jsonl").read_text() + log.log_path.read_text()


def test_a_step_ending_after_the_log_closed_is_kept_in_memory_only(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path)
    with log.steps.step("power off", why="end of run"):
        log.close()  # the console closed first; the teardown power-off must not crash on a closed file
    assert [e.name for e in log.steps.events] == ["power off"]
    assert (tmp_path / "events.jsonl").read_text() == ""


def test_threads_nest_their_own_steps(tmp_path: Path) -> None:
    recorder = StepRecorder(tmp_path / "events.jsonl")
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        with recorder.step("flash"):
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=other)
    with recorder.step("reach"):
        worker.start()
        inside.wait(5)
        with recorder.step("expect stage"):
            pass
        release.set()
        worker.join(5)
    events = {e["name"]: e for e in _lines(tmp_path / "events.jsonl")}
    assert events["flash"]["parent"] is None, "another thread's step is not a child of this thread's"
    assert events["expect stage"]["parent"] == events["reach"]["id"]


# -- the decorator ---------------------------------------------------------------------------------
class Relay:
    def __init__(self, steps: StepRecorder) -> None:
        self.steps = steps
        self.state = False

    @step("power set", "on", "channel")
    def set(self, on: bool, channel: int = 1, *, note: str = "") -> bool:
        """Returns the new state, so the decorator must pass the return value through."""
        if channel > 4:
            raise BenchError(f"channel {channel} does not exist")
        self.state = on
        return on


def test_the_decorator_records_each_call_with_the_arguments_it_names(tmp_path: Path) -> None:
    relay = Relay(StepRecorder())
    assert relay.set(True, note="not shown") is True
    with pytest.raises(BenchError):
        relay.set(on=False, channel=7)
    first, second = relay.steps.events
    assert (first.name, first.args, first.outcome) == ("power set", {"on": True, "channel": 1}, "pass")
    assert (second.args, second.outcome) == ({"on": False, "channel": 7}, "error")
    assert Relay.set.__doc__ is not None and "return value" in Relay.set.__doc__


def test_the_decorator_refuses_an_argument_the_method_does_not_have() -> None:
    with pytest.raises(TypeError, match=r"has no argument chanel"):
        step("power set", "chanel")(Relay.set.__wrapped__)  # type: ignore[attr-defined]


def test_step_event_line_shows_a_lone_text_argument_as_its_value() -> None:
    def line(**args: object) -> str:
        return StepEvent(1, None, 0, "x", args, 0.0, "", 1.0, "pass").line()  # type: ignore[arg-type]

    assert line(command="version") == "step x 'version': pass in 1.00 s"
    assert line(timeout=5.0) == "step x timeout=5.0: pass in 1.00 s"
    assert line(stage="kernel", why=None) == "step x 'kernel': pass in 1.00 s"
    assert re.fullmatch(r"step x a='1' b=2: pass in 1\.00 s", line(a="1", b=2))
