"""Helpers for the harness's own tests: run gate sessions in a child pytest and read its report."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GATES = ROOT / "tests" / "gates"


def read_report(path: Path) -> dict:
    """The data pytest-html embeds in report.html, with text extras decoded."""
    text = path.read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob, f"{path} has no pytest-html data blob"
    data = json.loads(html.unescape(blob.group(1)))
    for runs in data["tests"].values():
        for run in runs:
            for extra in run.get("extras", []):
                content = extra.get("content", "")
                if content.startswith("data:text/plain"):
                    head, _, payload = content.partition(",")
                    extra["text"] = (base64.b64decode(payload).decode() if ";base64" in head
                                     else urllib.parse.unquote(payload))
    data["html"] = text
    return data


@pytest.fixture
def run_gates(pytester: pytest.Pytester, tmp_path: Path):
    """Run the gate suite in a child pytest, as a user would type it; returns (result, report dir)."""

    def run(*args: str, gates: Path | str = GATES, timeout: float = 120):
        report_dir = tmp_path / "report"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--report-dir", str(report_dir), *args, str(gates), timeout=timeout)
        return result, report_dir

    return run
