"""The pdudaemon power kind against the real PDUDaemon from PyPI, started here on loopback.

The daemon runs with its `localcmdline` driver, whose on/off commands append "on <port>" /
"off <port>" to a file: a line there proves the daemon itself ran the command for the request the
harness sent. For the bootloader gates a watcher thread turns those lines into power for a virtual
board, so the harness, the daemon and the "PDU" are each the real code path.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bench_doubles import hardware_bench, run_bootloader_gates, virtual_board
from support import ROOT

from harness.config.bench import load_bench
from harness.errors import BenchError
from harness.power.base import PowerContext
from harness.power.control import PowerControl
from harness.power.pdudaemon import NO_READ_BACK, PduDaemonOutlet, PduDaemonSection, build, masked

PDU = "desk-pdu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    """A running pdudaemon: its URL and the file its localcmdline PDU writes to."""

    url: str
    switched: Path
    process: subprocess.Popen[str]
    log: Path

    def lines(self) -> list[str]:
        return self.switched.read_text().splitlines() if self.switched.exists() else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def pdudaemon(tmp_path: Path) -> Iterator[Daemon]:
    """PDUDaemon with one localcmdline PDU; `retries: 1` so a failing command is refused at once."""
    port = free_port()
    switched = tmp_path / "switched.log"
    config = {
        "daemon": {"hostname": "127.0.0.1", "port": port, "listener": "http", "logging_level": "DEBUG"},
        "pdus": {PDU: {"driver": "localcmdline", "retries": 1, "retrydelay": 0,
                       "cmd_on": f"echo on %s >> {switched}", "cmd_off": f"echo off %s >> {switched}"}},
    }
    conf = tmp_path / "pdudaemon.conf"
    conf.write_text(json.dumps(config))
    log = tmp_path / "pdudaemon.log"
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys, pdudaemon; sys.exit(pdudaemon.main())", "--conf", str(conf),
         "--logfile", str(log)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    daemon = Daemon(f"http://127.0.0.1:{port}", switched, process, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"pdudaemon exited: {process.stderr.read() if process.stderr else ''}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert time.monotonic() < deadline, "pdudaemon did not listen within 20 s"
            time.sleep(0.05)
        yield daemon
    finally:
        daemon.stop()


@contextlib.contextmanager
def watching(path: Path, on_line: Callable[[str], None]) -> Iterator[None]:
    """Calls `on_line` for each line appended to `path` (the PDU's commands), from a thread, until left."""
    stop = threading.Event()

    def follow() -> None:
        seen = 0
        while not stop.is_set():
            lines = path.read_text().splitlines() if path.exists() else []
            for line in lines[seen:]:
                on_line(line)
            seen = len(lines)
            time.sleep(0.005)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_the_daemon_runs_the_outlets_command_before_the_harness_returns(tmp_path: Path) -> None:
    """1.1 answers after its driver ran: once set() returns, the command's line is already written."""
    with pdudaemon(tmp_path) as daemon:
        outlet = PduDaemonOutlet(daemon.url, PDU, 3)
        outlet.set(True)
        assert daemon.lines() == ["on 3"]
        outlet.set(False)
        assert daemon.lines() == ["on 3", "off 3"]
        assert outlet.last_accepted is False
        assert "/power/control/on?hostname=desk-pdu&port=3&delay=0" in daemon.log.read_text()


def test_the_state_is_unknown_with_the_reason(tmp_path: Path) -> None:
    with pdudaemon(tmp_path) as daemon:
        outlet = PduDaemonOutlet(daemon.url, PDU, 1)
        control = PowerControl(outlet, off_time_s=0.01)
        control.cycle()  # no read-back to contradict the request: cycle completes
        assert daemon.lines() == ["off 1", "on 1"]
        assert outlet.get() is None and outlet.unknown_reason == NO_READ_BACK
        status = control.status()
        assert status.state == "unknown" and status.why.startswith("PDUDaemon has no read-back"), status.why


def test_an_unknown_pdu_is_refused_naming_the_url_and_the_config(tmp_path: Path) -> None:
    with pdudaemon(tmp_path) as daemon:
        with pytest.raises(BenchError) as caught:
            PduDaemonOutlet(daemon.url, "no-such-pdu", 1).set(True)
        assert daemon.lines() == [], "nothing was switched"
    message = str(caught.value)
    assert f"{daemon.url}/power/control/on?hostname=no-such-pdu" in message
    assert "HTTP 500" in message and "pdudaemon.conf" in message and "'no-such-pdu'" in message


def test_a_stopped_daemon_is_refused_at_once(tmp_path: Path) -> None:
    with pdudaemon(tmp_path) as daemon:
        PduDaemonOutlet(daemon.url, PDU, 1).set(True)
        daemon.stop()
        started = time.monotonic()
        with pytest.raises(BenchError, match=r"cannot reach the daemon .*Connection refused.* at http://127\.0\.0\.1"):
            PduDaemonOutlet(daemon.url, PDU, 1, timeout_s=2).set(False)
        assert time.monotonic() - started < 2
        assert daemon.lines() == ["on 1"]


def test_a_daemon_that_does_not_answer_is_a_bench_error_within_the_timeout() -> None:
    """A listener that accepts and never answers (a hung daemon, a PDU it waits on) costs timeout_s."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(BenchError, match=r"no answer within 0\.3 s .*state is unknown"):
            PduDaemonOutlet(url, PDU, 1, timeout_s=0.3).set(True)
        assert time.monotonic() - started < 2


@dataclass
class AuthProxy:
    """A loopback stand-in for a basic-auth proxy in front of PDUDaemon: it only checks the header."""

    expected: str
    headers: list[str | None] = field(default_factory=list)


def test_a_password_from_the_bench_secrets_goes_in_a_header_and_never_into_a_message() -> None:
    proxy = AuthProxy(expected="Basic " + base64.b64encode(b"lab:s3cret").decode())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            header = self.headers.get("Authorization")
            proxy.headers.append(header)
            ok = header == proxy.expected
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"OK - accepted request\n" if ok else b"no\n")

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://lab@127.0.0.1:{server.server_address[1]}"
        section = PduDaemonSection(kind="pdudaemon", url=url, hostname=PDU, port=2, password_secret="pdu_password")
        secrets = {"pdu_password": "s3cret"}
        build(section, PowerContext(bench="desk", secret=secrets.__getitem__)).set(True)
        assert proxy.headers == [proxy.expected]
        secrets["pdu_password"] = "wrong"
        outlet = build(section, PowerContext(bench="desk", secret=secrets.__getitem__))
        with pytest.raises(BenchError, match="HTTP 401") as caught:
            outlet.set(True)
        assert "wrong" not in str(caught.value) and "lab@" not in str(caught.value)
        assert "lab@" not in outlet.description
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_are_masked_in_what_the_harness_shows() -> None:
    assert masked("http://lab:pw@pdu.lab:16421/x") == "http://***@pdu.lab:16421/x"
    assert masked("http://pdu.lab:16421") == "http://pdu.lab:16421"


@pytest.mark.parametrize(("power", "message"), [
    ("{kind: pdudaemon, url: 'http://lab:pw@pdu:16421', hostname: p, port: 1}", "password in the bench file"),
    ("{kind: pdudaemon, url: 'pdu:16421', hostname: p, port: 1}", "http:// or https:// URL"),
    ("{kind: pdudaemon, url: 'http://pdu:16421/power/control/on?port=1', hostname: p, port: 1}", "base URL only"),
    ("{kind: pdudaemon, url: 'http://pdu:16421', port: 1}", "hostname"),
    ("{kind: pdudaemon, url: 'http://pdu:16421', hostname: p, port: ''}", "must not be empty"),
    ("{kind: pdudaemon, url: 'http://pdu:16421', hostname: p, port: true}", "valid integer"),
])
def test_the_bench_section_is_checked_in_the_file(tmp_path: Path, power: str, message: str) -> None:
    bench = tmp_path / "desk.yaml"
    bench.write_text(f"name: desk\nkind: hardware\nserial: {{url: /dev/null}}\npower: {power}\n")
    with pytest.raises(Exception, match=message) as caught:
        load_bench(str(bench), tmp_path)
    assert "pw" not in str(caught.value).replace("password", "")


def test_the_bootloader_gates_pass_through_pdudaemon(tmp_path: Path) -> None:
    with virtual_board(tmp_path) as board, pdudaemon(tmp_path) as daemon, \
            watching(daemon.switched, lambda line: line.endswith(" 4") and board.power(line.startswith("on"))):
        bench = hardware_bench(tmp_path, board, f"{{kind: pdudaemon, url: '{daemon.url}', hostname: {PDU}, "
                                                f"port: 4, off_time_s: 0.1}}")
        done = run_bootloader_gates(bench, tmp_path / "report")
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
        lines = daemon.lines()
        assert lines[0] == "off 4", "a run switches off first"
        assert "on 4" in lines and lines[-1] == "off 4", "powered through the daemon, and left off"


def test_the_example_bench_passes_hil_check() -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "check", "benches/examples/pdudaemon.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok (bench" in done.stdout, done.stderr
