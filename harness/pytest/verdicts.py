"""Verdicts, defined once: what a gate's outcome means and whose fault it was.

- pass: the evidence was seen in this run;
- fail: the board or its image did wrong;
- error: the bench did wrong (serial port, relay, flash target);
- usage error: the user's command or files are wrong; the run stops before power-on (exit 4);
- not applicable: the board profile says the board has no such thing (its reason is quoted);
- blocked: the gate's evidence can only appear after a stage that failed (the failure is quoted);
- interrupted: the run was stopped (Ctrl-C, SIGTERM, SIGHUP) while this gate ran;
- not run: deselected, or the run stopped before it.

pytest knows passed/failed/skipped, and calls a failure outside the test body an error. The
harness's exceptions say whose fault a problem is, so the report is rewritten to match: a bench
error raised while a gate ran becomes an error, a board failure met while a fixture drove the
board becomes a failure, a blocked gate is skipped with its reason (and the run's exit status
is non-zero). Terminal summary, pytest-html and JUnit all then agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.errors import BenchError, Blocked, BoardFailure, ConfigError
from harness.gates.registry import REQUIREMENTS, shipped_gates

PASS, FAIL, ERROR, USAGE_ERROR = "pass", "fail", "error", "usage error"
NOT_APPLICABLE, BLOCKED, INTERRUPTED, NOT_RUN = "not applicable", "blocked", "interrupted", "not run"
ORDER = (PASS, FAIL, ERROR, BLOCKED, INTERRUPTED, NOT_APPLICABLE, NOT_RUN)
# A requirement shows its worst gate.
_PRIORITY = {FAIL: 0, ERROR: 1, INTERRUPTED: 2, BLOCKED: 3, NOT_APPLICABLE: 4, PASS: 5, NOT_RUN: 6}
LABELS = {FAIL: "fail (board)", ERROR: "error (bench)"}


@dataclass
class GateVerdict:
    nodeid: str
    requirements: tuple[str, ...]
    verdict: str
    reason: str = ""
    stage: str | None = None


def classify(item: pytest.Item, call: pytest.CallInfo[None], rep: pytest.TestReport) -> None:
    """Move a failure to the phase pytest reports it by, according to whose fault it was."""
    error = call.excinfo.value if call.excinfo is not None else None
    if not rep.failed or error is None:
        return
    if isinstance(error, Blocked):
        rep.outcome = "skipped"  # not the gate's own failure; the run still exits non-zero
        rep.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"{BLOCKED}: {error}")
    elif rep.when == "call" and isinstance(error, BenchError | ConfigError):
        rep.when = "setup"  # pytest and pytest-html report a failure outside the test body as an error
    elif rep.when == "setup" and isinstance(error, BoardFailure):
        rep.when = "call"


def verdict_of(item: pytest.Item, rep: pytest.TestReport, call: pytest.CallInfo[None]) -> GateVerdict | None:
    marker = item.get_closest_marker("requirement")
    if marker is None:
        return None
    ids = tuple(str(a) for a in marker.args)
    error = call.excinfo.value if call.excinfo is not None else None
    stage = getattr(error, "stage", None)
    reason = str(error).split("\n")[0] if error is not None else ""
    if rep.skipped:
        text = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        text = text.removeprefix("Skipped: ")
        verdict = next((v for v in (NOT_APPLICABLE, BLOCKED) if text.startswith(v)), NOT_RUN)
        return GateVerdict(item.nodeid, ids, verdict, text.removeprefix(f"{BLOCKED}: "))
    if rep.failed:
        return GateVerdict(item.nodeid, ids, ERROR if rep.when != "call" else FAIL, reason, stage)
    return GateVerdict(item.nodeid, ids, PASS)


def matrix(verdicts: dict[str, GateVerdict]) -> list[tuple[str, str, str, str, str]]:
    """(id, phase, criterion, verdict, reason) for every roadmap requirement, gates or not."""
    by_id: dict[str, list[GateVerdict]] = {}
    for v in verdicts.values():
        for requirement in v.requirements:
            by_id.setdefault(requirement, []).append(v)
    rows = []
    shipped = shipped_gates()
    for r in REQUIREMENTS:
        gates = by_id.get(r.id, [])
        worst = min(gates, key=lambda g: _PRIORITY[g.verdict], default=None)
        if worst is None:
            why = "no gate ran in this session" if r.id in shipped else "no gate for it in this version yet"
            rows.append((r.id, r.phase, r.criterion, NOT_RUN, why))
        else:
            rows.append((r.id, r.phase, r.criterion, worst.verdict, worst.reason))
    return rows


def counts(verdicts: dict[str, GateVerdict]) -> dict[str, int]:
    tally = dict.fromkeys(ORDER, 0)
    for v in verdicts.values():
        tally[v.verdict] += 1
    return {k: n for k, n in tally.items() if n}
