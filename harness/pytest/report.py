"""Report integration: pytest-html header, per-gate console excerpts, the boot timeline.

`--report-dir DIR` turns on pytest-html with a self-contained `DIR/report.html` and puts the
console logs beside it, so the directory is the whole record of a run and can be attached to a
release as it is. pytest-html writes its file in `pytest_sessionfinish`, which pytest runs on
Ctrl-C too, and the console log is flushed per chunk, so an interrupted run keeps both.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from harness.pytest import verdicts
from harness.rig import describe_bench
from harness.steps import StepEvent

if TYPE_CHECKING:
    from harness.pytest.state import HarnessState
    from harness.session import BringUpSession

_start_key = pytest.StashKey[int]()
EXCERPT_LIMIT = 64 * 1024
# Inline, because a self-contained report carries no stylesheet of ours.
VERDICT_COLOURS = {verdicts.PASS: "#1a7f37", verdicts.FAIL: "#cf222e", verdicts.ERROR: "#bc4c00",
                   verdicts.NOT_APPLICABLE: "#0969da", verdicts.BLOCKED: "#8250df", verdicts.INTERRUPTED: "#9a6700"}


def configure(config: pytest.Config, state: HarnessState) -> None:
    if state.report_dir is None:
        return
    state.report_dir.mkdir(parents=True, exist_ok=True)
    if not getattr(config.option, "htmlpath", None):
        config.option.htmlpath = str(state.report_dir / "report.html")
    config.option.self_contained_html = True
    config.pluginmanager.register(_HtmlHooks(state), "talos-harness-html")


def mark_start(item: pytest.Item, session: BringUpSession | None) -> None:
    if session is not None:
        item.stash[_start_key] = session.console.log.position()


def attach_console(item: pytest.Item, rep: pytest.TestReport, session: BringUpSession | None) -> None:
    """Give each gate the console lines printed while it ran (setup included); a failed gate also
    gets the whole boot it judged, since gates sharing a boot often fail on lines printed earlier."""
    if session is None or rep.when == "teardown" or (rep.when == "setup" and rep.passed):
        return
    from pytest_html import extras

    attached = []
    excerpt = session.console.log.excerpt(item.stash.get(_start_key, 0), limit=EXCERPT_LIMIT)
    if excerpt.strip():
        attached.append(extras.text(excerpt, name="console"))
    if rep.failed:
        boot = session.console.log.excerpt(session.boot_log_position, limit=EXCERPT_LIMIT)
        attached.append(extras.text(boot, name="this boot"))
    rep.extras = [*getattr(rep, "extras", []), *attached]
    rep.sections.append(("board", session.describe()))


class _HtmlHooks:
    """pytest-html hooks, registered only when a report is written."""

    def __init__(self, state: HarnessState) -> None:
        self.state = state

    def _header(self) -> dict[str, str]:
        state = self.state
        if state.profile is None or state.bench is None:
            return {"Board": "none (gates skipped: no --board)"}
        return {
            "Board": f"{state.profile.name} ({state.profile.description})",
            "Board profile file": str(state.profile_file),
            "Bench": state.bench.name,
            "Bench file": str(state.bench_file) if state.bench_file else "built in",
            "Hardware": describe_bench(state.bench),
            "Image": state.image or "as on the board's storage",
            **({"Faults injected": ", ".join(state.bench.sim.faults)} if state.bench.sim and state.bench.sim.faults
               else {}),
        }

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        board = self.state.profile.name if self.state.profile else "no board"
        report.title = f"Talos bring-up: {board}"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # pragma: no cover
            return
        session.config.stash[metadata_key].update(self._header())

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        postfix.append(matrix_html(self.state.verdicts))
        header = self._header()
        prefix.append("<p>" + " &middot; ".join(
            f"<b>{html.escape(k)}:</b> {html.escape(v)}" for k, v in header.items()) + "</p>")
        session = self.state.session
        if session is None:
            return
        if self.state.left_on:
            prefix.append("<p><b>The board was left on</b> after this run's failure (--keep-on-failure).</p>")
        prefix.append(f"<p><b>Power-ons:</b> {session.power_ons} &middot; "
                      '<b>Console log:</b> <a href="console.log">console.log</a> '
                      '(raw bytes: <a href="console.raw">console.raw</a>)</p>')
        prefix.append(timeline_html(session))
        prefix.append(steps_html(session.console.log.steps.events))


def timeline_html(session: BringUpSession) -> str:
    """The boot timeline: when each stage marker arrived, per power-on."""
    if not session.timeline:
        return "<p><b>Boot timeline:</b> no stage marker seen</p>"
    rows = "".join(
        f"<tr><td>{e.power_on}</td><td>{html.escape(e.stage)}</td><td>{e.seconds:.3f}</td>"
        f"<td><code>{html.escape(e.line)}</code></td></tr>" for e in session.timeline)
    return ("<h3>Boot timeline</h3><table class='timeline' style='border-spacing:8px 2px'><tr><th>power-on</th>"
            f"<th>stage</th><th>seconds after power-on</th><th>marker</th></tr>{rows}</table>")


def steps_html(events: Sequence[StepEvent]) -> str:
    """Every step of the run (power, stage and evidence waits, commands), from the step recorder that
    also writes events.jsonl: nested steps indented, each with its start, duration and outcome."""
    if not events:
        return ""
    rows = "".join(
        f"<tr><td>{e.start_s:.3f}</td><td style='padding-left:{e.depth}em'>{html.escape(e.name)}</td>"
        f"<td><code>{html.escape(' '.join(f'{k}={v!r}' for k, v in e.args.items() if v is not None))}</code></td>"
        f"<td>{e.duration_s:.3f}</td><td style='color:{VERDICT_COLOURS.get(e.outcome, '#777')}'>{e.outcome}</td>"
        f"<td>{html.escape(e.detail or e.error or '')}</td></tr>"
        for e in sorted(events, key=lambda e: (e.start_s, e.depth)))
    return (f"<details class='steps'><summary><b>Steps</b> ({len(events)}, also in events.jsonl)</summary>"
            "<table style='border-spacing:8px 2px'><tr><th>start (s)</th><th>step</th><th>arguments</th>"
            f"<th>seconds</th><th>outcome</th><th>detail</th></tr>{rows}</table></details>")


def matrix_html(gate_verdicts: dict[str, verdicts.GateVerdict]) -> str:
    """Every roadmap requirement with its verdict in this run, in the roadmap's order."""
    rows = "".join(
        f"<tr class='verdict-{v.replace(' ', '-')}'><td style='white-space:nowrap'>{i}</td><td>{p}</td>"
        f"<td>{html.escape(c)}</td><td style='white-space:nowrap;color:{VERDICT_COLOURS.get(v, '#777')}'>"
        f"<b>{v}</b></td><td>{html.escape(reason)}</td></tr>"
        for i, p, c, v, reason in verdicts.matrix(gate_verdicts))
    return ("<h3>Requirement matrix</h3><table class='requirements' style='border-spacing:8px 2px'><tr><th>id</th>"
            f"<th>phase</th><th>criterion</th><th>verdict</th><th>reason</th></tr>{rows}</table>")
