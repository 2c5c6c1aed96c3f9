"""Console against real ptys and pyserial URLs: capture, matching, typing, and each way a port fails.

The test plays the board: it writes to a pty's master fd (what the board prints) and reads from it
(what the harness types), while the console holds the slave like a USB UART. Failures are checked by
the words a person at the bench needs (the path, "does not exist", "dialout", "refused baud"), since
those messages are the harness's whole answer when the bench is wired wrong.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from serial import rfc2217

from harness.console.console import Console
from harness.errors import BadPatternSeen, BenchError, ConsoleTimeout

BAUD = 115200
STAMP = r"\[\s*\d+\.\d{6}\] "
# pyserial's RFC 2217 client still calls Thread.setDaemon/setName; that is not ours to fix.
PYSERIAL_RFC2217_WARNINGS = pytest.mark.filterwarnings("ignore:set(Daemon|Name):DeprecationWarning")


def wait_until(condition: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> None:
    """Poll `condition` until true; fail the test (not hang) when it never becomes true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class Pty:
    """A pty pair: the test holds master (the board's side) and a slave fd; the console opens the path."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.closed = False

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.master)
            os.close(self.slave)


class FakeUsbUart:
    """A USB UART powered by the board: unplugging removes its device, replugging makes a new one."""

    def __init__(self) -> None:
        self.pty = Pty()
        self.present = True

    def __call__(self) -> str | None:
        """The console's URL source: the current device path, or None while it is absent."""
        return self.pty.path if self.present else None

    def unplug(self) -> None:
        self.present = False
        self.pty.close()

    def replug(self) -> None:
        self.pty = Pty()
        self.present = True


class TcpPeer:
    """A TCP server on 127.0.0.1 for one client: keeps what it reads, optionally answers it (telnet)."""

    def __init__(self, answer: Callable[[bytes], bytes] | None = None) -> None:
        self.answer = answer
        self.received = b""
        self.connected = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._client: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._client, _ = self._server.accept()
        except OSError:
            return
        self.connected.set()
        with contextlib.suppress(OSError):
            while data := self._client.recv(4096):
                self.received += data
                if self.answer is not None:
                    self._client.sendall(self.answer(self.received))

    def send(self, data: bytes) -> None:
        """What the board prints; only once the console is open (pyserial drains input while opening)."""
        assert self.connected.wait(2) and self._client is not None
        self._client.sendall(data)

    def close(self) -> None:
        self._server.close()
        if self._client is not None:
            self._client.close()
        self._thread.join(timeout=2)


@pytest.fixture
def pty() -> Iterator[Pty]:
    board = Pty()
    yield board
    board.close()


@pytest.fixture
def console(pty: Pty, tmp_path: Path) -> Iterator[Console]:
    """An open console on `pty`'s slave, logging under tmp_path/logs; closed after the test."""
    con = Console(pty.path, BAUD, tmp_path / "logs")
    con.open()
    yield con
    con.close()


def log_lines(console: Console) -> list[str]:
    return console.log.log_path.read_text(encoding="utf-8").splitlines()


def test_output_before_any_expect_is_captured_raw_and_cleaned(pty: Pty, console: Console) -> None:
    """What the board prints before a test waits is in console.raw byte for byte and in console.log cleaned.

    console.raw is the evidence `hil log analyze` reads, so it must hold every byte (CR, escapes,
    line noise); console.log is for people, so each line carries seconds since open.
    """
    data = b"U-Boot SPL 2024.01\r\n\x1b[2KDDR \xff\xfe ok\r\nhalf a line"
    pty.write(data)
    wait_until(lambda: console.bytes_received == len(data), what="the console to read everything")
    assert console.expect("DDR .* ok", 2).text == "DDR \ufffd\ufffd ok"
    console.close()

    assert console.log.raw_path.name == "console.raw"
    assert console.log.raw_path.read_bytes() == data
    lines = log_lines(console)
    assert re.fullmatch(STAMP + r"\[hil\] console opened: " + re.escape(pty.path) + rf" at {BAUD} baud", lines[0])
    text = [line for line in lines if "[hil]" not in line]
    assert len(text) == 3
    for line, expected in zip(text, ["U-Boot SPL 2024.01", "DDR \ufffd\ufffd ok", "half a line"], strict=True):
        assert re.fullmatch(STAMP + re.escape(expected), line), line
    assert re.fullmatch(STAMP + r"\[hil\] console closed", lines[-1])


def test_expect_returns_groups_and_arrival(pty: Pty, console: Console) -> None:
    """expect gives the captured groups and when the line arrived (for stage timestamps)."""
    before = time.monotonic()
    pty.write(b"DDR V1.19 20240229\r\nLPDDR5, 2400MHz\r\n")
    found = console.expect(r"^(LPDDR5|LPDDR4X?), (\d+)MHz$", 2)
    assert found.groups == ("LPDDR5", "2400")
    assert found.group(2) == "2400"
    assert before <= found.arrived <= time.monotonic()


def test_timeout_raises_console_timeout_with_tail_and_pattern(pty: Pty, console: Console) -> None:
    """Silence on a present port is the board's failure, and the message shows what the board last said."""
    pty.write(b"U-Boot 2024.01 (Jan 01 2024)\r\n=> ")
    wait_until(lambda: console.bytes_received > 0)
    started = time.monotonic()
    with pytest.raises(ConsoleTimeout) as err:
        console.expect("Starting kernel", 0.3, stage="u-boot")
    assert time.monotonic() - started >= 0.3
    message = str(err.value)
    assert "'Starting kernel'" in message
    assert "last console lines" in message
    assert "U-Boot 2024.01 (Jan 01 2024)" in message
    assert err.value.stage == "u-boot"


def test_bad_pattern_ends_a_long_wait_at_once(pty: Pty, console: Console) -> None:
    """A kernel panic must fail the gate when it is printed, not after the wait's long timeout."""
    console.bad_patterns = [("kernel-panic", re.compile(r"Kernel panic - not syncing"))]
    timeout = 10.0
    timer = threading.Timer(0.1, pty.write, args=(b"Kernel panic - not syncing: VFS: Unable to mount root fs\r\n",))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(BadPatternSeen) as err:
            console.expect("login: ", timeout, stage="kernel")
    finally:
        timer.cancel()
    assert time.monotonic() - started < timeout / 2
    assert err.value.name == "kernel-panic"
    assert err.value.line.startswith("Kernel panic - not syncing")
    assert err.value.stage == "kernel"


def read_master(pty: Pty, count: int, timeout: float = 2.0) -> list[tuple[float, int]]:
    """Read `count` bytes from the master, each with the time its read returned."""
    got: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([pty.master], [], [], 0.05)
        if ready:
            data = os.read(pty.master, count - len(got))
            now = time.monotonic()
            got.extend((now, byte) for byte in data)
    return got


def test_send_paces_characters(pty: Pty, tmp_path: Path) -> None:
    """RK3588 U-Boot drops keystrokes typed faster than char_delay: each byte must leave on its own."""
    console = Console(pty.path, BAUD, tmp_path / "logs", char_delay_s=0.02)
    console.open()
    try:
        received: list[tuple[float, int]] = []
        reader = threading.Thread(target=lambda: received.extend(read_master(pty, 3)))
        reader.start()
        console.send("abc")
        reader.join(timeout=3)
        assert bytes(byte for _, byte in received) == b"abc"
        gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(received)]
        assert all(gap >= 0.015 for gap in gaps), gaps
    finally:
        console.close()


def test_sendcontrol_and_sendline(pty: Pty, console: Console) -> None:
    """sendcontrol('c') is the Ctrl-C that stops autoboot; sendline ends a command with LF."""
    console.sendcontrol("c")
    assert bytes(byte for _, byte in read_master(pty, 1)) == b"\x03"
    console.sendline("printenv")
    assert bytes(byte for _, byte in read_master(pty, 9)) == b"printenv\n"


def test_missing_device_names_the_path(tmp_path: Path) -> None:
    """An unplugged USB UART is reported as such, with the path from the bench file."""
    console = Console("/dev/ttyDOESNOTEXIST0", BAUD, tmp_path / "logs")
    try:
        with pytest.raises(BenchError) as err:
            console.open()
    finally:
        console.close()
    assert "/dev/ttyDOESNOTEXIST0" in str(err.value)
    assert "does not exist" in str(err.value)


OPEN_AS_NOBODY = """
import os, sys
from pathlib import Path
from harness.console.console import Console
from harness.errors import BenchError

console = Console(sys.argv[1], 115200, Path(sys.argv[2]))  # log files created before dropping root
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
try:
    console.open()
except BenchError as exc:
    print("BenchError:", exc)
else:
    print("opened")
"""


def test_permission_denied_mentions_dialout(pty: Pty, tmp_path: Path) -> None:
    """A user outside the device's group gets told how to join it ("dialout"), not a bare EACCES.

    Root ignores file modes, so the open runs in a child that drops to uid/gid 65534 when the suite
    runs as root; the child prints the error, and the test asserts on that output.
    """
    os.chmod(pty.path, 0o600 if os.geteuid() == 0 else 0o000)
    child = subprocess.run([sys.executable, "-c", OPEN_AS_NOBODY, pty.path, str(tmp_path / "logs")],
                           capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    output = child.stdout.strip()
    assert output.startswith("BenchError:"), output
    assert "permission denied" in output
    assert "dialout" in output
    assert pty.path in output


def _open_refused(peer: TcpPeer, tmp_path: Path) -> tuple[str, str]:
    """Open an rfc2217:// console against `peer`; it must fail: returns the URL and the message."""
    url = f"rfc2217://127.0.0.1:{peer.port}?timeout=0.5"
    console = Console(url, 1500000, tmp_path / "logs")
    try:
        with pytest.raises(BenchError) as err:
            console.open()
    finally:
        console.close()
        peer.close()
    return url, str(err.value)


@PYSERIAL_RFC2217_WARNINGS
def test_plain_tcp_server_is_not_rfc2217(tmp_path: Path) -> None:
    """rfc2217:// to a raw TCP port (ser2net `raw` accepter) cannot set the baud: say so and how to fix it."""
    url, message = _open_refused(TcpPeer(), tmp_path)
    assert url in message
    assert "does not speak RFC 2217" in message
    assert "socket://" in message


IAC, WILL, DO, COM_PORT_OPTION = 255, 251, 253, 44


def accept_rfc2217_only() -> Callable[[bytes], bytes]:
    """A telnet peer's answers: agree to RFC 2217 once, never acknowledge a parameter change (the baud)."""
    will_com_port = bytes([IAC, WILL, COM_PORT_OPTION])
    answered = False

    def answer(received: bytes) -> bytes:
        nonlocal answered
        if answered or will_com_port not in received:
            return b""
        answered = True
        return bytes([IAC, DO, COM_PORT_OPTION])

    return answer


@PYSERIAL_RFC2217_WARNINGS
def test_rfc2217_server_refusing_the_baud(tmp_path: Path) -> None:
    """An RFC 2217 server that does not accept the speed change: the message names the URL and baud."""
    url, message = _open_refused(TcpPeer(answer=accept_rfc2217_only()), tmp_path)
    assert url in message
    assert "refused baud 1500000" in message
    assert "RFC 2217 server did not accept the speed change" in message


class Rfc2217Server:
    """pyserial's own RFC 2217 server logic in front of a loop:// port: what ser2net telnet(rfc2217) does."""

    def __init__(self) -> None:
        self.serial = serial.serial_for_url("loop://", timeout=0.05)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._running = True
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        self._conn = conn
        manager = rfc2217.PortManager(self.serial, self)

        def to_network() -> None:
            while self._running:
                with contextlib.suppress(OSError, serial.SerialException):
                    data = self.serial.read(self.serial.in_waiting or 1)
                    if data:
                        conn.sendall(b"".join(manager.escape(data)))

        pump = threading.Thread(target=to_network, daemon=True)
        self._threads.append(pump)
        pump.start()
        with contextlib.suppress(OSError):
            while data := conn.recv(1024):
                self.serial.write(b"".join(manager.filter(data)))

    def write(self, data: bytes) -> None:
        """PortManager's way of answering the client."""
        self._conn.sendall(data)

    def close(self) -> None:
        self._running = False
        self._server.close()
        if hasattr(self, "_conn"):
            self._conn.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self.serial.close()


@PYSERIAL_RFC2217_WARNINGS
def test_rfc2217_url_works_end_to_end(tmp_path: Path) -> None:
    """A real RFC 2217 server: the console opens at the profile's baud, types, and matches the echo."""
    server = Rfc2217Server()
    url = f"rfc2217://127.0.0.1:{server.port}?timeout=1"
    try:
        with Console(url, 1500000, tmp_path / "logs") as console:
            assert server.serial.baudrate == 1500000
            console.sendline("hello rfc2217")
            assert console.expect(r"^hello (\w+)$", 2).group(1) == "rfc2217"
    finally:
        server.close()


def test_socket_url_reads_and_writes(tmp_path: Path) -> None:
    """socket:// (ser2net raw accepter) carries both directions."""
    peer = TcpPeer()
    console = Console(f"socket://127.0.0.1:{peer.port}", BAUD, tmp_path / "logs")
    console.open()
    try:
        peer.send(b"U-Boot 2024.01\r\n=> ")
        assert console.expect("=> ", 2).text == "=> "
        console.sendline("version")
        wait_until(lambda: peer.received == b"version\n", what="the peer to receive the command")
    finally:
        console.close()
        peer.close()
    assert console.log.raw_path.read_bytes() == b"U-Boot 2024.01\r\n=> "


def test_loop_url_echoes_what_is_sent(tmp_path: Path) -> None:
    """loop:// returns what is typed: it matches like any board output."""
    with Console("loop://", BAUD, tmp_path / "logs") as console:
        console.sendline("hello loop")
        found = console.expect(r"^hello (\w+)$", 2)
    assert found.group(1) == "loop"


@pytest.fixture
def uart() -> Iterator[FakeUsbUart]:
    device = FakeUsbUart()
    yield device
    device.pty.close()


def test_port_that_reenumerates_is_reopened_into_the_same_log(uart: FakeUsbUart, tmp_path: Path) -> None:
    """A UART powered by the board vanishes at power-off and comes back as a new device.

    The console must follow it into the same log files, say so in console.log, and, while it is
    gone, blame a timeout on the bench ("disappeared"), not on a silent board.
    """
    console = Console(uart, BAUD, tmp_path / "logs")
    console.open()
    try:
        first = b"U-Boot SPL 2024.01\r\nfirst boot\r\n"
        uart.pty.write(first)
        console.expect("^first boot$", 2)

        unplugged = time.monotonic()
        uart.unplug()
        wait_until(lambda: not console.port_present, what="the console to notice the port is gone")
        with pytest.raises(BenchError) as err:
            console.expect("never", 0.05)
        assert "disappeared" in str(err.value)
        time.sleep(max(0.0, 0.3 - (time.monotonic() - unplugged)))  # absent for ~0.3 s, reopen keeps trying

        uart.replug()
        wait_until(lambda: console.reopen_count == 1 and console.port_present, what="the console to reopen")
        second = b"U-Boot SPL 2024.01\r\nsecond boot\r\n"
        uart.pty.write(second)
        assert console.expect("^second (boot)$", 2).group(1) == "boot"
        assert console.reopen_count == 1
    finally:
        console.close()

    assert console.log.raw_path.read_bytes() == first + second
    log = console.log.log_path.read_text(encoding="utf-8")
    assert "[hil] console port lost" in log
    assert "[hil] console port back" in log
    assert log.index("first boot") < log.index("console port lost") < log.index("console port back") \
        < log.index("second boot")


def test_a_boot_capture_holds_only_bytes_this_console_received(pty: Pty, console: Console) -> None:
    """Evidence comes from memory, never read back from a file another process could write."""
    pty.write(b"before the mark\r\n")
    console.expect("before the mark", 2)
    console.mark()
    with console.log.raw_path.open("ab") as foreign:
        foreign.write(b"Machine model: written by someone else\r\n")
    pty.write(b"after the mark\r\n")
    console.expect("after the mark", 2)
    assert console.received_since_mark() == b"after the mark\r\n"
    assert console.received_since_mark(6) == b"the mark\r\n"
