"""Fixtures for the harness's own tests: run gate sessions in a child pytest, as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import GATES


@pytest.fixture
def run_gates(pytester: pytest.Pytester, tmp_path: Path):
    """Run the gate suite in a child pytest, as a user would type it; returns (result, report dir)."""

    def run(*args: str, gates: Path | str = GATES, timeout: float = 120):
        report_dir = tmp_path / "report"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--report-dir", str(report_dir), *args, str(gates), timeout=timeout)
        return result, report_dir

    return run
