"""Mask secrets where pytest renders reports: the terminal, JUnit XML and pytest-html.

The console masks what the board prints, but pytest builds a failure's text itself, from the
test's arguments and locals (`--showlocals`, the long style's argument list), captured output and
log records: a join token or a bench secret held in a variable would reach the terminal, the
report and the JUnit file through them. This plugin masks each report where the reporters
receive it, before the first of them reads it; and the few things pytest prints without a report
(the traceback kept for Ctrl-C, an internal error, a warning) and pytest-html's summary. What the
board printed is masked already by the console (`harness.console.secrets`); the same
`SecretMasker` does the work here, so a join token is masked by its key even when nobody listed
its value.

Register it with `register(config, secrets)` once the bench is known (see `secrets_of`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol

import pytest

from harness.console.secrets import SecretMasker

PLUGIN_NAME = "talos-harness-masking"
_UNMASKABLE_EXTRAS = ("image", "video")  # base64 media: no secret text in it, and masking could corrupt it


def register(config: pytest.Config, secrets: Iterable[str]) -> None:
    """Mask `secrets` (and any join token) in everything this run reports; a second call adds secrets."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(plugin, ReportMasker):
        plugin.add(secrets)
    else:
        config.pluginmanager.register(ReportMasker(secrets), PLUGIN_NAME)


def printed_forms(secret: str) -> set[str]:
    """A secret as reports print it: itself, inside a repr() (escaped, as in locals), HTML-escaped (summary)."""
    return {secret, repr(secret)[1:-1], html.escape(secret)}


class _Lines(Protocol):
    def line(self, s: str = "", **markup: bool) -> None: ...


class MaskedRepr:
    """A failure's text, masked, for a longrepr whose own structure could not be masked in place.

    It renders like a string longrepr but keeps the crash line (`reprcrash`) that the short test
    summary and JUnit's `message` attribute read, when that line itself is clean.
    """

    def __init__(self, text: str, reprcrash: object | None) -> None:
        self.text = text
        self.reprcrash = reprcrash

    def toterminal(self, tw: _Lines) -> None:
        for line in self.text.split("\n"):
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def mask_in_place(value: Any, mask: Callable[[str], str], seen: set[int] | None = None) -> Any:
    """`value` with every string in it masked. pytest's repr objects and lists are changed in place,
    because several objects share them (a chained repr's `chain` and its `reprtraceback`); plain
    tuples are rebuilt. Other objects are left alone: the caller checks the rendered text after."""
    if isinstance(value, str):
        return mask(value)
    seen = set() if seen is None else seen
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [mask_in_place(item, mask, seen) for item in value]
    elif type(value) is tuple:
        return tuple(mask_in_place(item, mask, seen) for item in value)
    elif type(value).__module__.startswith("_pytest.") and hasattr(value, "__dict__"):
        for name, attribute in list(vars(value).items()):
            setattr(value, name, mask_in_place(attribute, mask, seen))
    return value


class ReportMasker:
    """The pytest plugin: one `SecretMasker` applied to every report before it is read."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self.masker = SecretMasker()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            self._forms |= printed_forms(secret)
        self.masker = SecretMasker(self._forms)

    # -- masking -------------------------------------------------------------------------------
    def text(self, text: str) -> str:
        return self.masker.text(text)

    def leaks(self, text: str) -> bool:
        return self.text(text) != text

    def data(self, value: Any) -> Any:
        """Strings in plain data (an extra's JSON content, a skip tuple), masked; anything else as it is."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list) or type(value) is tuple:
            return type(value)(self.data(item) for item in value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        return value

    def longrepr(self, longrepr: Any) -> Any:
        """A report's failure text, masked; untouched when there is nothing to mask (keeps its colours)."""
        if longrepr is None or isinstance(longrepr, str | tuple):
            return self.data(longrepr)
        if not self.leaks(str(longrepr)):
            return longrepr
        mask_in_place(longrepr, self.text)
        if not self.leaks(str(longrepr)):
            return longrepr
        crash = mask_in_place(getattr(longrepr, "reprcrash", None), self.text)
        return MaskedRepr(self.text(str(longrepr)), None if crash is None or self.leaks(str(crash)) else crash)

    def mask_report(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        """Everything a reporter reads from a report: failure, captured output and logs, properties, extras."""
        report.longrepr = self.longrepr(report.longrepr)
        report.sections = [(self.text(title), self.text(content)) for title, content in report.sections]
        if isinstance(report, pytest.TestReport):
            report.user_properties = [(name, self.text(str(value)) if self.leaks(str(value)) else value)
                                      for name, value in report.user_properties]
        if isinstance(wasxfail := getattr(report, "wasxfail", None), str):
            report.wasxfail = self.text(wasxfail)
        for name in ("extras", "extra"):  # pytest-html's, and its deprecated spelling
            if extras := getattr(report, name, None):
                setattr(report, name, [self._extra(extra) for extra in extras])

    def _extra(self, extra: Any) -> Any:
        if not isinstance(extra, dict) or extra.get("format_type") in _UNMASKABLE_EXTRAS:
            return extra
        return self.data(extra)

    # -- reports: masked where every reporter gets them, before the first one reads them ------------
    # Not in pytest_runtest_makereport: a report can be made without it (the harness reports a gate
    # stopped by a signal by hand; xdist's controller gets its workers' reports), and nothing reads
    # a report between its making and these hooks (--pdb's pytest_exception_interact comes after).
    @pytest.hookimpl(wrapper=True, tryfirst=True)  # the outermost wrapper runs before every other implementation
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        self.mask_report(report)
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> Generator[None, Any, Any]:
        self.mask_report(report)
        return (yield)

    # -- what pytest prints without a report -----------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """The terminal keeps `excinfo.getrepr(funcargs=True)` to print at the end (whole with --full-trace):
        every repr of this exception comes out masked."""
        getrepr = excinfo.getrepr

        def masked_getrepr(*args: Any, **kwargs: Any) -> Any:
            return self.longrepr(getrepr(*args, **kwargs))

        excinfo.getrepr = masked_getrepr  # type: ignore[method-assign]

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self, excrepr: Any) -> None:
        """Every implementation prints the same object, so it is masked in place before the first one."""
        mask_in_place(excrepr, self.text)

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        text = str(warning_message.message)
        if self.leaks(text):
            warning_message.message = UserWarning(self.text(text))

    # -- pytest-html's summary: the requirement matrix quotes a failed gate's error, unmasked -----------
    @pytest.hookimpl(wrapper=True, tryfirst=True, optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str]) -> Generator[None, Any, Any]:
        result = yield
        for part in (prefix, summary, postfix):
            part[:] = [self.text(item) for item in part]
        return result
