"""The command runner's verbs against the virtual board's U-Boot, and its protocol against a pty peer.

`exec` returns what happened, `exec0` turns a non-zero status into a BoardFailure quoting it, `test`
answers a question, and `poll_until` replaces hand-written deadline loops. Each command is a step:
a `[hil] step` line in console.log and a JSON line in events.jsonl.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pty_peer import LinePeer
from sim_support import fast_profile, sim_bench

from harness.command import CommandFailed, CommandResult, PollTimeout
from harness.console.console import Console
from harness.errors import BoardFailure, ConsoleTimeout
from harness.rig import bring_up
from harness.runner import CommandRunner, Dialect
from harness.session import BringUpSession
from harness.uboot import UBoot


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BringUpSession]:
    with bring_up(fast_profile("nanopi-m6"), sim_bench(), tmp_path_factory.mktemp("runner")) as live:
        live.uboot_prompt()
        yield live


@pytest.fixture
def uboot(session: BringUpSession) -> UBoot:
    return session.uboot_prompt()


def _events(session: BringUpSession) -> list[dict[str, object]]:
    path = session.console.log.log_path.parent / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the three verbs ------------------------------------------------------------------------------
def test_exec_returns_status_and_output_whatever_the_status(uboot: UBoot) -> None:
    good = uboot.exec("version")
    bad = uboot.exec("printenv hil_never_set")
    assert good.status == 0 and good.output.startswith("U-Boot ")
    assert bad.status == 1 and bad.output == '## Error: "hil_never_set" not defined'


def test_exec0_returns_the_result_when_the_command_succeeds(uboot: UBoot) -> None:
    assert uboot.exec0("setenv hil_exec0 yes").ok
    assert uboot.exec0("printenv hil_exec0").output == "hil_exec0=yes"


def test_exec0_raises_a_board_failure_naming_command_status_and_output(uboot: UBoot) -> None:
    with pytest.raises(CommandFailed) as raised:
        uboot.exec0("printenv hil_never_set")
    assert isinstance(raised.value, BoardFailure), "the board answered wrongly: the gate fails, not errors"
    assert str(raised.value) == ("U-Boot command 'printenv hil_never_set' exited 1: "
                                 '## Error: "hil_never_set" not defined')
    assert raised.value.result.status == 1 and raised.value.stage == "u-boot"


def test_test_is_true_only_for_status_zero(uboot: UBoot) -> None:
    assert uboot.test("version") is True
    assert uboot.test("printenv hil_never_set") is False
    assert uboot.test("mmc dev 7") is False


# -- polling ------------------------------------------------------------------------------------------
def test_poll_until_returns_the_first_answer_that_satisfies_the_predicate(uboot: UBoot) -> None:
    """Each try appends an `x` to a variable: the third try is the first to print three."""
    uboot.exec0("setenv hil_tries")
    result = uboot.poll_until("setenv hil_tries ${hil_tries}x; printenv hil_tries",
                              lambda r: r.output == "hil_tries=xxx", timeout=10, interval=0.01)
    assert result.output == "hil_tries=xxx"
    assert uboot.exec0("printenv hil_tries").output == "hil_tries=xxx", "no try after the one that satisfied"


def test_poll_until_without_a_predicate_waits_for_status_zero(uboot: UBoot) -> None:
    """The first try defines `hil_seen` and fails to print `hil_ready`; the second defines and prints it."""
    uboot.exec0("setenv hil_seen; setenv hil_ready")
    result = uboot.poll_until("setenv hil_ready ${hil_seen}; setenv hil_seen 1; printenv hil_ready",
                              timeout=10, interval=0.01)
    assert (result.status, result.output) == (0, "hil_ready=1")


def test_poll_until_times_out_naming_the_command_and_its_last_answer(uboot: UBoot) -> None:
    started = time.monotonic()
    with pytest.raises(PollTimeout) as raised:
        uboot.poll_until("printenv hil_never_set", lambda r: r.ok, timeout=0.5, interval=0.1)
    waited = time.monotonic() - started
    message = str(raised.value)
    assert "U-Boot command 'printenv hil_never_set' did not give the expected answer within" in message
    assert message.endswith('the last exited 1: ## Error: "hil_never_set" not defined')
    assert isinstance(raised.value, BoardFailure)
    assert raised.value.last.status == 1 and raised.value.tries >= 2
    assert 0.5 <= waited < 5, "it gives up at the deadline, after a last try"


def test_poll_until_stops_at_once_when_the_board_stops_answering(tmp_path: Path) -> None:
    """A console that never answers is the console's own timeout, not a poll that goes on to its limit."""
    peer = LinePeer(lambda line: "")  # silence: no marker, no prompt
    try:
        with Console(peer.path, 115200, tmp_path) as console:
            runner = CommandRunner(console, "=> ", TEST_DIALECT)
            started = time.monotonic()
            with pytest.raises(ConsoleTimeout, match="the end of test command 'true'"):
                runner.poll_until("true", timeout=30, command_timeout=0.3)
    finally:
        peer.close()
    assert time.monotonic() - started < 5


# -- every command is a step -----------------------------------------------------------------------
def test_each_command_is_a_step_in_console_log_and_events_jsonl(session: BringUpSession, uboot: UBoot) -> None:
    uboot.exec("printenv hil_never_set")
    log = session.console.log.log_path.read_text()
    assert re.search(r"\[hil\] step u-boot command 'printenv hil_never_set': pass in \d+\.\d\d s \(exit 1\)$",
                     log, re.MULTILINE)
    last = [e for e in _events(session) if e["name"] == "u-boot command"][-1]
    assert last["args"] == {"command": "printenv hil_never_set"}
    assert (last["outcome"], last["detail"]) == ("pass", "exit 1")


def test_exec0_failing_is_a_failed_step(session: BringUpSession, uboot: UBoot) -> None:
    with pytest.raises(CommandFailed):
        uboot.exec0("mmc dev 7")
    last = [e for e in _events(session) if e["name"] == "u-boot command"][-1]
    assert last["outcome"] == "fail"
    assert str(last["error"]).startswith("CommandFailed: U-Boot command 'mmc dev 7' exited 1")


def test_a_poll_is_a_step_holding_each_try(session: BringUpSession, uboot: UBoot) -> None:
    uboot.exec0("setenv hil_nested")
    uboot.poll_until("setenv hil_nested ${hil_nested}x; printenv hil_nested",
                     lambda r: r.output == "hil_nested=xx", timeout=10, interval=0.01)
    events = _events(session)
    poll = [e for e in events if e["name"] == "poll u-boot command"][-1]
    tries = [e for e in events if e["parent"] == poll["id"]]
    assert poll["detail"] == "after 2 tries" and poll["depth"] == 0
    assert [(e["name"], e["depth"]) for e in tries] == [("u-boot command", 1)] * 2


# -- the protocol, against a peer that answers in its own way --------------------------------------
TEST_DIALECT = Dialect(label="test", step_name="test command", stage="u-boot", marker_prefix="HILT",
                       default_timeout=5.0, noise=re.compile(r"^NOISE "))


def _answer(echo: Callable[[str], str], output: str, status: int = 0) -> Callable[[str], str]:
    def reply(line: str) -> str:
        marker = re.search(r"echo (=\w+=)\$\?=$", line)
        return f"{echo(line)}\r\n{output}{marker.group(1)}{status}=\r\n=> " if marker else ""
    return reply


def _run_against(tmp_path: Path, reply: Callable[[str], str], command: str) -> tuple[CommandResult, LinePeer]:
    peer = LinePeer(reply)
    try:
        with Console(peer.path, 115200, tmp_path) as console:
            return CommandRunner(console, "=> ", TEST_DIALECT).exec(command), peer
    finally:
        peer.close()


def test_the_echoed_line_and_noise_are_not_output(tmp_path: Path) -> None:
    result, peer = _run_against(tmp_path, _answer(lambda line: line, "one\r\nNOISE kernel says hi\r\ntwo\r\n", 3),
                                "do it")
    assert re.fullmatch(r"do it; echo =HILT\d+=\$\?=", peer.typed[0])
    assert (result.status, result.output) == (3, "one\ntwo")


def test_a_truncated_echo_is_still_not_output(tmp_path: Path) -> None:
    """A console whose echo lost the marker's text (cut short) still starts with the command."""
    result, _ = _run_against(tmp_path, _answer(lambda line: line[:8], "answer\r\n"), "do it")
    assert result.output == "answer"


def test_every_command_has_its_own_marker_even_across_runners(tmp_path: Path) -> None:
    """After a power cycle a new runner drives the same console: an old runner's marker must never recur."""
    peer = LinePeer(_answer(lambda line: line, ""))
    try:
        with Console(peer.path, 115200, tmp_path) as console:
            for _ in range(2):
                runner = CommandRunner(console, "=> ", TEST_DIALECT)
                runner.exec("a")
                runner.exec("b")
    finally:
        peer.close()
    markers = [re.search(r"=HILT\d+=", line).group(0) for line in peer.typed]  # type: ignore[union-attr]
    assert len(markers) == 4 and len(set(markers)) == 4
