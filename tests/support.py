"""Helpers for the harness's own tests: where things are, and reading a pytest-html report back."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATES = ROOT / "harness" / "gates"
BOARDS = ROOT / "harness" / "boards"


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
