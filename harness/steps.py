"""Every driver action that takes time is a step: a timed, nested, structured event.

Power on, waiting for a stage, a U-Boot or shell command (later: build, flash, API probe) each run
inside `recorder.step(name, **arguments)`. When the step ends it is written twice: as a `[hil] step`
line in console.log, where people read it between the board's own lines, and as one JSON line in
events.jsonl, which the report's timeline and the trend read instead of parsing free text. Each JSON
line is flushed as it is written, so an interrupted run keeps every step that ended, and a step cut
short by Ctrl-C is still written (as an error) on its way out.

The outcome follows the harness's blame: `pass`; `fail` when a `BoardFailure` escaped (the board
did wrong); `error` for anything else (a `BenchError`, a bug, an interrupt). Arguments and error
messages go through the recorder's masking callable (the console's secret masker), so a join
token typed into U-Boot never reaches either file.

The recorder is an object owned by the run (the console log creates one beside console.log) and
handed to drivers explicitly; nesting is tracked per recorder and per thread, never in a global.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

from harness.errors import BoardFailure

Outcome = Literal["pass", "fail", "error"]
Scalar = str | int | float | bool | None
STEP_PREFIX = "step "  # after console.log's "[hil] ": `[hil] step u-boot command 'version': pass in 0.12 s`


def outcome_of(error: BaseException | None) -> Outcome:
    """The blame of what ended a step: the same split as the gates' verdicts."""
    if error is None:
        return "pass"
    return "fail" if isinstance(error, BoardFailure) else "error"


@dataclass
class Step:
    """A step in progress, handed to the body: it may add a short `detail` (`exit 1`, `after 3 tries`)."""

    id: int
    parent: int | None
    depth: int
    name: str
    args: dict[str, Scalar]
    detail: str | None = None


@dataclass(frozen=True)
class StepEvent:
    """A step that ended, as written to events.jsonl (one JSON object per line, these fields)."""

    id: int
    parent: int | None
    depth: int
    name: str
    args: dict[str, Scalar]
    start_s: float  # seconds since the console log opened: the same clock as console.log's line stamps
    start: str  # wall-clock ISO 8601 time with its UTC offset, for trends across runs
    duration_s: float
    outcome: Outcome
    detail: str | None = None
    error: str | None = None  # the escaping exception's type and first line, masked
    event: str = field(default="step")  # the kind of record, so other kinds can share the file

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def line(self) -> str:
        """The console.log line (without its `[hil] ` prefix)."""
        shown = _show_args(self.args)
        text = f"{STEP_PREFIX}{self.name}{' ' + shown if shown else ''}: {self.outcome} in {self.duration_s:.2f} s"
        if self.detail:
            text += f" ({self.detail})"
        if self.error:
            text += f": {self.error}"
        return text


def _show_args(args: dict[str, Scalar]) -> str:
    """A lone text argument as its quoted value (`'version'`), else `key=value` each; None values are left out."""
    present = {k: v for k, v in args.items() if v is not None}
    if len(present) == 1 and isinstance(only := next(iter(present.values())), str):
        return repr(only)
    return " ".join(f"{k}={v!r}" for k, v in present.items())


def _identity(text: str) -> str:
    return text


class StepRecorder:
    """Writes each step that ends to `path` (JSON lines) and through `note` (console.log's `[hil]` lines).

    `origin` is the monotonic time the console log opened, so `start_s` lines up with console.log;
    `mask` hides secrets in arguments and error messages; `clock` is replaceable for tests. Either
    output may be absent: `path=None` keeps events in memory only (`events`).
    """

    def __init__(self, path: Path | None = None, *, note: Callable[[str], None] | None = None,
                 mask: Callable[[str], str] = _identity, origin: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._note = note
        self.mask = mask
        self._clock = clock
        self.origin = clock() if origin is None else origin
        self.events: list[StepEvent] = []  # every step that ended, in the order they ended
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._open = threading.local()  # per thread: the stack of steps in progress
        self._file = path.open("w", encoding="utf-8") if path is not None else None
        self._closed = False

    def _stack(self) -> list[Step]:
        stack: list[Step] | None = getattr(self._open, "stack", None)
        if stack is None:
            stack = self._open.stack = []
        return stack

    def _masked(self, value: object) -> Scalar:
        if value is None or isinstance(value, bool | int | float):
            return value  # type: ignore[return-value]
        return self.mask(str(value))

    @contextlib.contextmanager
    def step(self, name: str, **args: object) -> Iterator[Step]:
        """Time the body as one step named `name`; re-raises whatever ends it, after writing it."""
        stack = self._stack()
        parent = stack[-1] if stack else None
        with self._lock:
            current = Step(next(self._ids), parent.id if parent else None, len(stack), name,
                           {key: self._masked(value) for key, value in args.items()})
        started = self._clock()
        wall = datetime.now().astimezone().isoformat(timespec="milliseconds")
        stack.append(current)
        error: BaseException | None = None
        try:
            yield current
        except BaseException as exc:  # an interrupt ends the step too; it is written, then re-raised
            error = exc
            raise
        finally:
            stack.pop()
            self._write(StepEvent(
                current.id, current.parent, current.depth, current.name, current.args,
                start_s=round(started - self.origin, 6), start=wall,
                duration_s=round(self._clock() - started, 6), outcome=outcome_of(error),
                detail=self.mask(current.detail) if current.detail else None,
                error=self._describe(error)))

    def _describe(self, error: BaseException | None) -> str | None:
        if error is None:
            return None
        lines = str(error).strip().splitlines()
        return self.mask(type(error).__name__ + (f": {lines[0]}" if lines else ""))

    def _write(self, event: StepEvent) -> None:
        with self._lock:
            self.events.append(event)
            if self._closed:
                return  # a step that ends after the log closed (a teardown power-off) has nowhere to go
            if self._file is not None:
                self._file.write(event.to_json() + "\n")
                self._file.flush()
            if self._note is not None:
                self._note(event.line())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None and not self._file.closed:
                self._file.close()


class HasSteps(Protocol):
    steps: StepRecorder


S = TypeVar("S", bound=HasSteps)
P = ParamSpec("P")
R = TypeVar("R")


def step(name: str, *shown: str) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Decorate a method of a driver that has a `steps` recorder: each call is a step named `name`,
    with the call's arguments named in `shown` (defaults applied) as the step's arguments."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        signature = inspect.signature(method)
        unknown = [arg for arg in shown if arg not in signature.parameters]
        if unknown:
            raise TypeError(f"{method.__qualname__} has no argument {', '.join(unknown)} to show in its step")

        @functools.wraps(method)
        def recorded(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments: dict[str, Any] = {arg: bound.arguments[arg] for arg in shown}
            with self.steps.step(name, **arguments):
                return method(self, *args, **kwargs)

        return recorded

    return decorate
