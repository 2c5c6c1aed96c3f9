"""Verdicts: pass, fail (the board did wrong), error (the bench did wrong), not applicable, not run.

pytest knows passed/failed/skipped, and calls a failure outside the test body an error. The
harness's exceptions say whose fault a problem is, so the report is rewritten to match: a bench
error raised while a gate ran becomes an error, a board failure met while a fixture drove the
board becomes a failure. Terminal summary, pytest-html and JUnit all then agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.errors import BenchError, BoardFailure, ConfigError
from harness.requirements import REQUIREMENTS

NOT_APPLICABLE = "not applicable"
ORDER = ("pass", "fail", "error", NOT_APPLICABLE, "not run")
_PRIORITY = {"fail": 0, "error": 1, NOT_APPLICABLE: 2, "pass": 3, "not run": 4}  # a requirement shows its worst gate


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
    if rep.when == "call" and isinstance(error, BenchError | ConfigError):
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
        return GateVerdict(item.nodeid, ids, NOT_APPLICABLE if text.startswith(NOT_APPLICABLE) else "not run", text)
    if rep.failed:
        return GateVerdict(item.nodeid, ids, "error" if rep.when != "call" else "fail", reason, stage)
    return GateVerdict(item.nodeid, ids, "pass")


def matrix(verdicts: dict[str, GateVerdict]) -> list[tuple[str, str, str, str, str]]:
    """(id, phase, criterion, verdict, reason) for every roadmap requirement, gates or not."""
    by_id: dict[str, list[GateVerdict]] = {}
    for v in verdicts.values():
        for requirement in v.requirements:
            by_id.setdefault(requirement, []).append(v)
    rows = []
    for r in REQUIREMENTS:
        gates = by_id.get(r.id, [])
        worst = min(gates, key=lambda g: _PRIORITY[g.verdict], default=None)
        if worst is None:
            rows.append((r.id, r.phase, r.criterion, "not run", "no gate ran in this session"))
        else:
            rows.append((r.id, r.phase, r.criterion, worst.verdict, worst.reason))
    return rows


def counts(verdicts: dict[str, GateVerdict]) -> dict[str, int]:
    tally = dict.fromkeys(ORDER, 0)
    for v in verdicts.values():
        tally[v.verdict] += 1
    return {k: n for k, n in tally.items() if n}
