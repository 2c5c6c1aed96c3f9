"""Secrets never reach a log, the expect buffer, an error or a report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.console.console import Console
from harness.console.secrets import SecretMasker

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
