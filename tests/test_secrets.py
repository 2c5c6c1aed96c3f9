"""Secrets never reach a log, the expect buffer, an error or a report."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import pytest
from support import read_report

from harness.config.bench import Bench, SimSpec
from harness.console.console import Console
from harness.console.secrets import SecretMasker, secrets_of
from harness.pytest.masking import PLUGIN_NAME, MaskedRepr, ReportMasker, register

LINE = b"Kernel command line: console=ttyS2 siderolink.api=https://omni.example.invalid?jointoken=s3cr3t-T0KEN&x=1\r\n"


def _split_everywhere(masker_secrets: tuple[str, ...], data: bytes) -> list[bytes]:
    outputs = []
    for cut in range(len(data) + 1):
        masker = SecretMasker(masker_secrets)
        outputs.append(masker.feed(data[:cut]) + masker.feed(data[cut:]) + masker.flush())
    return outputs


def test_join_token_is_masked_wherever_the_reads_split_it() -> None:
    for out in _split_everywhere((), LINE):
        assert b"s3cr3t" not in out and b"T0KEN" not in out
        assert out == LINE.replace(b"s3cr3t-T0KEN", b"***")


def test_bench_secret_values_are_masked_wherever_the_reads_split_them() -> None:
    data = b"omni key is hunter2-Very-Secret, really\r\n"
    for out in _split_everywhere(("hunter2-Very-Secret",), data):
        assert out == b"omni key is ***, really\r\n"


def test_nothing_is_held_back_when_no_secret_can_be_starting() -> None:
    masker = SecretMasker(("hunter2-Very-Secret",))
    assert masker.feed(b"U-Boot 2017.09\r\n=> ") == b"U-Boot 2017.09\r\n=> "


def test_short_values_are_not_treated_as_secrets() -> None:
    assert SecretMasker(("abc",)).feed(b"abc abc\n") == b"abc abc\n"


def test_console_logs_and_buffer_never_hold_the_token(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with Console(os.ttyname(slave), 115200, tmp_path, secrets=("hunter2-Very-Secret",)) as console:
            os.write(master, LINE[:70])
            os.write(master, LINE[70:] + b"password hunter2-Very-Secret\r\n")
            found = console.expect(r"Kernel command line: (.*)$", 5)
            console.expect(r"password (\S+)$", 5)
            with pytest.raises(Exception) as timeout:
                console.expect("never", 0.2)
        assert "s3cr3t" not in found.group(1) and "jointoken=***" in found.group(1)
        assert "hunter2" not in str(timeout.value)
        for name in ("console.raw", "console.log"):
            stored = (tmp_path / name).read_bytes()
            assert b"s3cr3t" not in stored and b"hunter2" not in stored and b"jointoken=***" in stored, name
    finally:
        os.close(master)
        os.close(slave)


# -- configuration objects print nothing secret ----------------------------------------------------
SIDEROLINK = "siderolink.api=grpc://omni.example:8090?jointoken=JT-7c41f0d2e9b3&insecure=1"


def _desk(monkeypatch: pytest.MonkeyPatch) -> Bench:
    monkeypatch.setenv("HIL_TEST_OMNI_KEY", "omni-key-5d8e2a71")
    return Bench(name="desk", kind="sim", secrets={"omni": "HIL_TEST_OMNI_KEY"}, sim=SimSpec(kernel_args=[SIDEROLINK]))


def test_a_bench_prints_as_its_name_and_kind_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest shows a gate's `bench` argument in every long traceback: no token, nothing from its secrets."""
    bench = _desk(monkeypatch)
    for shown in (repr(bench), str(bench), f"{bench!r} {bench}"):
        assert "JT-7c41f0d2e9b3" not in shown and "omni-key" not in shown
        assert "<Bench desk (sim)>" in shown


def test_sim_settings_print_their_kernel_arguments_with_the_token_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local holding `bench.sim` (--showlocals) shows the arguments, readable, without the token."""
    sim = _desk(monkeypatch).sim
    assert sim is not None
    for shown in (repr(sim), str(sim)):
        assert "JT-7c41f0d2e9b3" not in shown
        assert "siderolink.api=grpc://omni.example:8090?jointoken=***&insecure=1" in shown


def test_secrets_of_a_bench_are_its_environment_values_and_join_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _desk(monkeypatch)
    monkeypatch.setenv("HIL_TEST_UNSET_TOO", "")
    bench = bench.model_copy(update={"secrets": {**bench.secrets, "other": "HIL_TEST_UNSET_TOO"}})
    assert sorted(secrets_of(bench)) == ["JT-7c41f0d2e9b3", "omni-key-5d8e2a71"]
    assert secrets_of(Bench(name="desk", serial={"url": "loop://"})) == []


# -- the report masker's pieces ---------------------------------------------------------------------
def test_register_twice_adds_secrets_to_the_one_plugin(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure()
    register(config, ["first-secret-1111"])
    register(config, ["second-secret-2222"])
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(plugin, ReportMasker)
    assert plugin.text("first-secret-1111 second-secret-2222 jointoken=abcd") == "*** *** jointoken=***"


def test_a_secret_is_masked_as_a_repr_and_as_html_print_it() -> None:
    """Locals are shown by repr(), which escapes quotes and backslashes; the HTML summary escapes `&<>`."""
    secret = "o'mni\\key&<1>"
    masker = ReportMasker([secret])
    assert masker.text(f"key = {secret!r}") == 'key = "***"'
    assert masker.text(html.escape(secret)) == "***"


def _pytest_repr(message: str) -> Any:
    try:
        raise RuntimeError(message)
    except RuntimeError:
        return pytest.ExceptionInfo.from_current().getrepr(showlocals=True, style="long")


def test_a_pytest_failure_repr_is_masked_in_place_keeping_its_crash_line() -> None:
    """pytest's own repr keeps its structure (colours, the short summary's crash line), only masked."""
    failure = _pytest_repr("Omni refused omni-key-5d8e2a71")
    masked = ReportMasker(["omni-key-5d8e2a71"]).longrepr(failure)
    assert masked is failure
    assert "omni-key" not in str(masked)
    assert masked.reprcrash.message == "RuntimeError: Omni refused ***"


def test_a_clean_failure_repr_is_left_as_it_is() -> None:
    failure = _pytest_repr("Omni refused")
    text = str(failure)
    assert ReportMasker(["omni-key-5d8e2a71"]).longrepr(failure) is failure
    assert str(failure) == text


class ForeignRepr:
    """A plugin's own failure text: an object pytest renders, but whose insides the masker does not know."""

    def __init__(self, text: str) -> None:
        self._text = text

    def toterminal(self, tw: Any) -> None:
        tw.line(self._text)

    def __str__(self) -> str:
        return self._text


def test_a_failure_repr_that_cannot_be_masked_in_place_becomes_its_masked_text() -> None:
    masked = ReportMasker(["omni-key-5d8e2a71"]).longrepr(ForeignRepr("Omni refused omni-key-5d8e2a71"))
    assert isinstance(masked, MaskedRepr)
    assert str(masked) == "Omni refused ***" and masked.reprcrash is None


# -- reports: terminal, JUnit XML, pytest-html ------------------------------------------------------
# The child run's bench. Secret values reach it only through the environment, never through its
# source, so whatever shows them printed a value at run time (as a real bench's would be). Its hooks
# stand in for what the harness does: quote a gate's error in the HTML summary (the requirement
# matrix), report a gate by hand (one stopped by a signal), and one plugin failing (internal error).
CHILD_CONFTEST = """
import os

import pytest

from harness.config.bench import Bench, SimSpec
from harness.console.secrets import secrets_of
from harness.pytest.masking import register

DESK = Bench(name="desk", kind="sim", secrets={"omni": "HIL_TEST_OMNI_KEY"},
             sim=SimSpec(kernel_args=[os.environ["HIL_TEST_SIDEROLINK"]]))


def pytest_configure(config):
    register(config, secrets_of(DESK))


@pytest.fixture
def bench():
    return DESK


@pytest.fixture
def omni_key(bench):
    return bench.secret("omni")


def pytest_html_results_summary(prefix, summary, postfix):
    postfix.append(f"<p>gate reason: Omni refused key {DESK.secret('omni')}</p>")


def pytest_collection_finish(session):
    if any(item.name == "test_never_runs_after_an_internal_error" for item in session.items):
        key = DESK.secret("omni")
        raise RuntimeError(f"a plugin broke holding key {key}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item):
    if item.name != "test_reported_by_hand":
        return None
    key, where = DESK.secret("omni"), (item.nodeid, item.location)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for when, outcome, longrepr in (("setup", "failed", f"stopped; key {key}"), ("teardown", "passed", None)):
        item.ihook.pytest_runtest_logreport(report=pytest.TestReport(
            *where, {}, outcome, longrepr, when, sections=[(f"Captured stdout {when}", key)],
            user_properties=[("key", key)]))
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
"""

CHILD_TESTS = {
    "setup_error": """
import pytest


@pytest.fixture
def omni_session(bench, omni_key):
    cmdline = " ".join(bench.sim.kernel_args)
    print("connecting:", cmdline, omni_key)
    raise ConnectionError(f"Omni refused {cmdline} with key {omni_key}")


def test_joins(omni_session):
    pass
""",
    "failure": """
import logging
import warnings

import pytest
from pytest_html import extras as html_extras


def test_the_board_got_the_token(bench, omni_key, record_property, extras):
    args = bench.sim.kernel_args
    token = args[0].split("jointoken=")[1].split("&")[0]
    print("cmdline:", *args)
    logging.getLogger("hil").warning("joining with %s", omni_key)
    warnings.warn(f"Omni answers slowly to key {omni_key}")
    record_property("cmdline", " ".join(args))
    extras.append(html_extras.text(f"console: {' '.join(args)}", name="console"))
    assert token == omni_key, f"the board saw {args} and key {omni_key}"


def test_skipped_for_a_reason_naming_the_key(omni_key):
    pytest.skip(f"Omni is down for key {omni_key}")


def test_a_known_failure_naming_the_key(omni_key):
    pytest.xfail(f"Omni rejects key {omni_key}")
""",
    "interrupt": """
def test_before_the_interrupt(bench, omni_key):
    print("key", omni_key, "args", bench.sim.kernel_args)


def test_interrupted(bench, omni_key):
    cmdline = " ".join(bench.sim.kernel_args)
    raise KeyboardInterrupt
""",
    "collect_error": """
import os

key = os.environ["HIL_TEST_OMNI_KEY"]
raise RuntimeError(f"cannot load the gates with key {key}")
""",
    "by_hand": """
def test_reported_by_hand():
    pass
""",
    "internal_error": """
def test_never_runs_after_an_internal_error():
    pass
""",
}
# xunit1 and junit_logging=all: JUnit then holds properties and captured output too.
COMMON_ARGS = ("-p", "no:cacheprovider", "-rA", "--tb=long", "--showlocals",
               "-o", "junit_family=xunit1", "-o", "junit_logging=all")
EXTRA_ARGS = {"interrupt": ("--full-trace",)}
# Where each variant's secrets surface: each of these must show the mask in their place, which
# proves the secret got that far (and so that a run without masking would leak it there).
ALL_CHANNELS = {"terminal", "junit.xml", "report.html"}
MASKED_IN = {"setup_error": ALL_CHANNELS, "failure": {*ALL_CHANNELS, "report.html extras"}, "interrupt": ALL_CHANNELS,
             "collect_error": ALL_CHANNELS, "by_hand": ALL_CHANNELS, "internal_error": {"terminal", "report.html"}}
SECRET_VALUES = ("JT-7c41f0d2e9b3", "omni-key-5d8e2a71")


def _run_child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
               variant: str) -> tuple[pytest.RunResult, dict[str, str]]:
    """Run the variant's child pytest; returns its result and what it wrote: terminal, JUnit XML, report."""
    monkeypatch.setenv("HIL_TEST_OMNI_KEY", SECRET_VALUES[1])
    monkeypatch.setenv("HIL_TEST_SIDEROLINK", SIDEROLINK)
    pytester.makeconftest(CHILD_CONFTEST)
    pytester.makepyfile(**{f"test_{variant}": CHILD_TESTS[variant]})
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        *COMMON_ARGS, *EXTRA_ARGS.get(variant, ()), f"--junitxml={out / 'junit.xml'}",
        f"--html={out / 'report.html'}", "--self-contained-html", timeout=60)
    written = {str(path.relative_to(out)): path.read_text(encoding="utf-8", errors="replace")
               for path in sorted(out.rglob("*")) if path.is_file()}
    written["terminal"] = "\n".join(result.outlines + result.errlines)
    # A self-contained report carries text extras base64-encoded, where a plain search cannot see them.
    written["report.html extras"] = "\n".join(
        extra.get("text", "") for runs in read_report(out / "report.html")["tests"].values()
        for run in runs for extra in run.get("extras", []))
    return result, written


@pytest.mark.parametrize("variant", list(MASKED_IN))
def test_no_secret_reaches_the_terminal_junit_or_the_html_report(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """Errors in setup, failures, Ctrl-C, collection errors, hand-made reports, internal errors: with
    --showlocals, the long traceback and -rA, not one file of the run nor its terminal shows a secret."""
    result, written = _run_child(pytester, monkeypatch, variant)
    leaks = {name: [s for s in SECRET_VALUES if s in text] for name, text in written.items()}
    assert {name: found for name, found in leaks.items() if found} == {}
    assert {name for name, text in written.items() if "***" in text} >= MASKED_IN[variant]
    _assert_still_useful(variant, result, written["terminal"])


def _assert_still_useful(variant: str, result: pytest.RunResult, terminal: str) -> None:
    """Masking hides values, not failures: the outcome and what went wrong still read as before."""
    expected = {
        "setup_error": ("ConnectionError: Omni refused siderolink.api=grpc://omni.example:8090?jointoken=***",
                        "omni_key = '***'"),
        "failure": ("FAILED test_failure.py::test_the_board_got_the_token - AssertionError",
                    "args       = ['siderolink.api=grpc://omni.example:8090?jointoken=***&insecure=1']",
                    "UserWarning: Omni answers slowly to key ***", "joining with ***",
                    "Omni is down for key ***", "XFAIL test_failure.py::test_a_known_failure_naming_the_key - "
                    "Omni rejects key ***"),
        "interrupt": ("KeyboardInterrupt", "omni_key = '***'", "key *** args"),
        "collect_error": ("RuntimeError: cannot load the gates with key ***",),
        "by_hand": ("stopped; key ***",),
        "internal_error": ("INTERNALERROR> RuntimeError: a plugin broke holding key ***",),
    }[variant]
    for text in expected:
        assert text in terminal
    exits = {"interrupt": pytest.ExitCode.INTERRUPTED, "internal_error": pytest.ExitCode.INTERNAL_ERROR}
    assert result.ret == exits.get(variant, result.ret)
    if variant == "failure":
        result.assert_outcomes(failed=1, skipped=1, xfailed=1, warnings=1)
