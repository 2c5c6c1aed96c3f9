"""The `command` power kind: the bench's own shell commands, with a timeout, exit status and state parsing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pydantic
import pytest
from support import ROOT

from harness.config.bench import load_bench
from harness.errors import BenchError
from harness.power import shell_command
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.shell_command import ShellCommandSection, ShellCommandSwitch, parse_state, run_tool

EXAMPLES = ROOT / "benches" / "examples"


def outlet(tmp_path: Path) -> tuple[str, str, str, Path]:
    """on/off/state commands that keep an outlet's state in a file, as a lab script would."""
    state = tmp_path / "outlet"
    state.write_text("off\n")
    return f"echo on > {state}", f"echo off > {state}", f"cat {state}", state


def test_on_and_off_run_their_commands_and_state_reads_back(tmp_path: Path) -> None:
    on, off, state, path = outlet(tmp_path)
    control = PowerControl(ShellCommandSwitch(on, off, state), off_time_s=0.01)
    control.on()
    assert path.read_text() == "on\n" and str(control.status()) == "on"
    control.off()
    assert path.read_text() == "off\n" and str(control.status()) == "off"


@pytest.mark.parametrize(("output", "state"), [
    ("on\n", True), ("ON", True), (" 1 \n", True), ("off", False), ("0\n", False),
    ("", None), ("relay 3 is on", None), ("on\noff\n", None), ("2", None),
])
def test_state_output_is_one_word_or_unknown(output: str, state: bool | None) -> None:
    assert parse_state(output) is state


def test_a_state_command_that_fails_means_unknown(tmp_path: Path) -> None:
    switch = ShellCommandSwitch("true", "true", "echo on; exit 3")
    assert switch.get() is None
    assert PowerControl(switch).status().state == "unknown"


def test_without_a_state_command_the_state_is_unknown() -> None:
    assert ShellCommandSwitch("true", "true").get() is None


def test_a_failing_command_is_a_bench_error_with_the_command_and_its_output_tail() -> None:
    command = "for i in $(seq 1 40); do echo line $i; done; echo 'outlet 4: no route to PDU' >&2; exit 2"
    with pytest.raises(BenchError) as caught:
        ShellCommandSwitch("true", command).set(False)
    text = str(caught.value)
    assert "switching off with 'for i in" in text and "exit status 2" in text
    assert "no route to PDU" in text and "line 40" in text
    assert "line 1\n" not in text, "only the tail of a long output"


def test_a_command_that_wont_end_is_killed_with_its_children_within_the_timeout() -> None:
    # `sleep | cat` leaves grandchildren holding the output pipe: killing only the shell would hang here.
    switch = ShellCommandSwitch("echo starting; sleep 30 | cat", "true", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"did not finish within 0\.3 s.*\n.*starting"):
        switch.set(True)
    assert time.monotonic() - started < 3


def test_a_missing_executable_is_a_bench_error_with_the_advice() -> None:
    advice = "no-such-relay-tool: cannot run '/nonexistent/no-such-relay-tool': install it"
    with pytest.raises(BenchError, match=advice):
        run_tool(["/nonexistent/no-such-relay-tool"], timeout_s=1, device="no-such-relay-tool",
                 missing="install it")


def test_invert_swaps_the_commands_and_the_state(tmp_path: Path) -> None:
    on, off, state, path = outlet(tmp_path)
    section = ShellCommandSection(kind="command", on=on, off=off, state=state, invert=True)
    switch = shell_command.BACKEND.build(section, PowerContext(bench="desk"))
    switch.set(True)
    assert path.read_text() == "off\n" and switch.get() is True
    assert "bench desk" in switch.description and "inverted" in switch.description


def test_unquoted_on_and_off_keys_in_yaml_are_taken_as_the_commands(tmp_path: Path) -> None:
    bench = load_bench(str(EXAMPLES / "command.yaml"), tmp_path)
    assert isinstance(bench.power, ShellCommandSection)
    assert (bench.power.on, bench.power.off) == ("/usr/local/bin/pdu-outlet 4 on", "/usr/local/bin/pdu-outlet 4 off")
    assert bench.power.state == "/usr/local/bin/pdu-outlet 4 status"


@pytest.mark.parametrize(("fields", "message"), [
    ({"on": ""}, "at least 1 character"),
    ({"off": None}, "valid string"),
    ({"timeout_s": -1}, "greater than 0"),
    ({"channel": 1}, "Extra inputs"),
])
def test_the_command_section_refuses_what_cannot_run(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ShellCommandSection.model_validate({"kind": "command", "on": "true", "off": "true", **fields})


@pytest.mark.parametrize("name", ["numato", "uhubctl", "ykush", "command"])
def test_hil_check_accepts_the_example_bench(name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "check", str(EXAMPLES / f"{name}.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "ok (bench file)" in done.stdout, done.stdout + done.stderr
