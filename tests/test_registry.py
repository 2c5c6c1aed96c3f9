"""The gate registry: every requirement declared once, and what reads it."""

from __future__ import annotations

import pytest

from harness.gates import registry
from harness.gates.registry import BY_ID, PHASES, REQUIREMENTS, gate, judge_all, shipped_gates
from harness.pytest.verdicts import GateVerdict, matrix


def test_every_requirement_is_declared_once_in_roadmap_phase_order() -> None:
    ids = [r.id for r in REQUIREMENTS]
    assert len(ids) == len(set(ids)) == len(BY_ID)
    assert all(r.phase in PHASES for r in REQUIREMENTS)
    order = list(PHASES)
    phases = [order.index(r.phase) for r in REQUIREMENTS if r.phase != "lifecycle"]
    assert phases[:4] == [0, 0, 0, 0] and max(phases) == order.index("hardening")


def test_a_gate_for_an_unknown_requirement_is_refused_naming_the_registry() -> None:
    with pytest.raises(KeyError, match=r"@gate\('BOOT-99'\): no such requirement in harness/gates/registry.py"):
        gate("BOOT-99")


def test_gate_marks_the_id_and_the_phase_and_registers_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped_gates()  # the shipped ones first, then a private copy this test may add to
    monkeypatch.setattr(registry, "IMPLEMENTED", {k: list(v) for k, v in registry.IMPLEMENTED.items()})

    @gate("KERN-04")
    def test_model_again() -> None: ...

    marks = {(m.name, tuple(m.args)) for m in test_model_again.pytestmark}  # type: ignore[attr-defined]
    assert marks == {("requirement", ("KERN-04",)), ("kernel", ())}
    assert f"{__name__}.test_gate_marks_the_id_and_the_phase_and_registers_the_function.<locals>.test_model_again" \
        in shipped_gates()["KERN-04"]


def test_the_shipped_gates_cover_phases_two_and_three() -> None:
    assert set(shipped_gates()) >= {"BOOT-01", "BOOT-02", "BOOT-03", "BOOT-04", "KERN-01", "KERN-02", "KERN-03",
                                    "KERN-04"}


def test_the_matrix_is_the_registry_in_order_and_says_why_a_row_did_not_run() -> None:
    rows = matrix({"g": GateVerdict("g", ("BOOT-02",), "fail", "DDR at 2112 MHz")})
    assert [row[0] for row in rows] == [r.id for r in REQUIREMENTS]
    by_id = {row[0]: row for row in rows}
    assert by_id["BOOT-02"][3:] == ("fail", "DDR at 2112 MHz")
    assert by_id["BOOT-01"][3:] == ("not run", "no gate ran in this session")
    assert by_id["CLST-04"][3:] == ("not run", "no gate for it in this version yet")


def test_offline_judging_covers_every_requirement_with_a_judge() -> None:
    from harness.config.profile import load_profile, shipped_boards_dir

    judged = judge_all("", load_profile("nanopi-m6", shipped_boards_dir()))
    assert set(judged) == {r.id for r in REQUIREMENTS if r.judge is not None}
    assert set(judged.values()) == {"not-seen"}
