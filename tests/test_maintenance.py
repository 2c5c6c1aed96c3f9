"""The maintenance probe against the simulated maintenance API, and the console parsers it pairs with."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from harness.sim.maintenance import MaintenanceEndpoint
from harness.talos.probe import host_port, parse_addresses, parse_fingerprint, probe_maintenance, spki_fingerprint

# A certificate made with the openssl CLI, and its pin computed by openssl too (the recipe
# `talosctl --cert-fingerprint` expects), so the fingerprint code is checked against something
# that doesn't share its implementation:
#   openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
KNOWN_CERT = """-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUBYoHjjvRCHnBdfWhfqZ8LZsyuCIwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRdGFsb3MgbWFpbnRlbmFuY2UwIBcNMjYxMTIyMDEyODMwWhgP
MjEyNjEwMjkwMTI4MzBaMBwxGjAYBgNVBAMMEXRhbG9zIG1haW50ZW5hbmNlMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJDY8cir7JI/0LBqCU7MC/tDf2yW0XBjG
k+ZxiiAu4FOMNJ6qm8/UbBEykmz8aAO8lbF4y/V991sIK/NCHAreH6NTMFEwHQYD
VR0OBBYEFBnKSQhwjVnknDNa2bUoZKqF5O5zMB8GA1UdIwQYMBaAFBnKSQhwjVnk
nDNa2bUoZKqF5O5zMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh
AOSl7bOBTqaMUBWwJlPpHfhZ+J0W8plrGZHOYZDWAlUPAiACxX0+rS6DERxcE+yM
lwYmhLO2lOOYttOWrEmn924tvQ==
-----END CERTIFICATE-----
"""
KNOWN_SPKI_PIN = "+D21yDg0gZb8Gyq4FttzQwopIpLrvJAYg+zgcBr6KUk="
KNOWN_CERT_DER_SHA256 = "89U2w+PnLdUlnjpNiDz9q4ojbAXAAQBTySSfjMNfSMo="  # the form Talos does *not* print

# A published serial capture of Talos v1.6 entering maintenance mode (addresses moved to documentation
# ranges, lines after the first talosctl hint cut), with a driver's line added in the middle as
# lands there on a real console.
CAPTURE = """\
[    9.851478] [talos] entering maintenance service {"component": "controller-runtime", "controller": "config.AcquireController"}
[    9.854129] [talos] this machine is reachable at: {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController"}
[    9.855517] [talos] \t192.0.2.56 {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController"}
[    9.855901] rk_gmac-dwmac fe1c0000.ethernet enxc2f1a3b4c5d6: Link is Up - 1Gbps/Full - flow control rx/tx
[    9.856546] [talos] \t2001:db8:17ba:2200:5054:ff:feba:99ef {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController"}
[    9.858176] [talos] server certificate issued {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController", "fingerprint": "rMWhs9V9Y30sbs9W5KNCgVRReKGrfvV0FwMtqEX4OW8="}
[    9.860209] [talos] upload configuration using talosctl: {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController"}
[    9.862119] [talos] \ttalosctl apply-config --insecure --nodes 192.0.2.56 --file <config.yaml> {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceController"}
"""  # noqa: E501


@pytest.fixture
def endpoint() -> Iterator[MaintenanceEndpoint]:
    with MaintenanceEndpoint() as ep:
        yield ep


def _with_timestamps(lines: list[str], start: float = 12.0) -> str:
    return "".join(f"[{start + i * 0.001:12.6f}] {line}\n" for i, line in enumerate(lines))


def _wait_for(condition, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# -- probe against the simulated board ---------------------------------------------------------

def test_probe_finds_the_fingerprint_the_board_printed(endpoint: MaintenanceEndpoint) -> None:
    console = _with_timestamps(endpoint.console_lines(["192.0.2.10", "2001:db8::10"]))
    printed = parse_fingerprint(console)
    assert printed == endpoint.fingerprint

    probe = probe_maintenance(endpoint.host, endpoint.port, expected_fingerprint=printed, timeout=2)

    assert probe.reachable, probe.error
    assert probe.error is None
    assert probe.fingerprint == endpoint.fingerprint
    assert probe.fingerprint_matches is True
    assert _wait_for(lambda: endpoint.handshakes == 1), "the endpoint never saw the handshake"


def test_probe_negotiates_h2_like_a_grpc_client(endpoint: MaintenanceEndpoint) -> None:
    assert probe_maintenance(endpoint.host, endpoint.port, timeout=2).alpn == "h2"


def test_another_boards_fingerprint_does_not_match(endpoint: MaintenanceEndpoint) -> None:
    with MaintenanceEndpoint() as other:
        assert other.fingerprint != endpoint.fingerprint, "each maintenance boot must issue its own key"
        probe = probe_maintenance(endpoint.host, endpoint.port, expected_fingerprint=other.fingerprint, timeout=2)
    assert probe.reachable
    assert probe.fingerprint == endpoint.fingerprint
    assert probe.fingerprint_matches is False


def test_without_an_expected_fingerprint_there_is_no_verdict(endpoint: MaintenanceEndpoint) -> None:
    probe = probe_maintenance(endpoint.host, endpoint.port, timeout=2)
    assert probe.reachable and probe.fingerprint == endpoint.fingerprint
    assert probe.fingerprint_matches is None


def test_closed_endpoint_is_unreachable_and_named() -> None:
    endpoint = MaintenanceEndpoint()
    host, port, fingerprint = endpoint.host, endpoint.port, endpoint.fingerprint
    endpoint.close()

    probe = probe_maintenance(host, port, expected_fingerprint=fingerprint, timeout=2)

    assert not probe.reachable
    assert f"127.0.0.1:{port}" in (probe.error or "")
    assert "refused" in (probe.error or "")
    assert probe.fingerprint is None and probe.fingerprint_matches is None and probe.alpn is None


def test_port_open_but_silent_times_out_during_handshake() -> None:
    with socket.socket() as silent:  # the kernel completes TCP from the backlog; nobody ever speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        probe = probe_maintenance("127.0.0.1", port, timeout=0.3)
        elapsed = time.monotonic() - started
    assert not probe.reachable
    assert f"127.0.0.1:{port}" in (probe.error or "") and "timed out" in (probe.error or "")
    assert elapsed < 2


def test_port_speaking_something_else_is_not_the_maintenance_api() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen(1)
        port = plain.getsockname()[1]

        def answer_in_http() -> None:
            conn, _ = plain.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        server = threading.Thread(target=answer_in_http, daemon=True)
        server.start()
        probe = probe_maintenance("127.0.0.1", port, timeout=2)
        server.join(timeout=2)
    assert not probe.reachable
    assert f"TLS handshake with 127.0.0.1:{port} failed" in (probe.error or "")


def test_ipv6_addresses_are_bracketed_in_errors() -> None:
    assert host_port("fdae:41e4:649b:9303::1", 50000) == "[fdae:41e4:649b:9303::1]:50000"
    assert host_port("192.0.2.10", 50000) == "192.0.2.10:50000"
    try:
        endpoint = MaintenanceEndpoint(host="::1")
    except OSError:
        # The IPv4 half above ran; the IPv6 half needs a kernel with an IPv6 loopback (not a feature of ours).
        pytest.skip("no IPv6 loopback here")
    port = endpoint.port
    assert probe_maintenance("::1", port, timeout=2).reachable
    endpoint.close()
    assert f"[::1]:{port}" in (probe_maintenance("::1", port, timeout=2).error or "")


# -- the fingerprint format --------------------------------------------------------------------

def test_fingerprint_is_base64_sha256_of_the_public_key_info() -> None:
    der = ssl.PEM_cert_to_DER_cert(KNOWN_CERT)
    assert spki_fingerprint(der) == KNOWN_SPKI_PIN
    assert spki_fingerprint(der) != KNOWN_CERT_DER_SHA256


# -- what the simulated board prints -----------------------------------------------------------

def test_console_lines_follow_talos_wording(endpoint: MaintenanceEndpoint) -> None:
    lines = endpoint.console_lines(["192.0.2.10", "2001:db8::10"])
    assert lines[0].startswith("[talos] entering maintenance service {")
    assert lines[1].startswith("[talos] this machine is reachable at: {")
    assert lines[2].startswith("[talos] \t192.0.2.10 {")
    assert lines[3].startswith("[talos] \t2001:db8::10 {")
    assert lines[4].startswith("[talos] server certificate issued {")
    assert f'"fingerprint": "{endpoint.fingerprint}"' in lines[4]
    assert lines[5].startswith("[talos] upload configuration using talosctl: {")
    assert lines[6].startswith("[talos] \ttalosctl apply-config --insecure --nodes 192.0.2.10 --file <config.yaml> {")
    assert f"--cert-fingerprint '{endpoint.fingerprint}'" in lines[8]
    assert all('"component": "controller-runtime"' in line for line in lines)


def test_console_lines_without_an_address_give_no_talosctl_hint(endpoint: MaintenanceEndpoint) -> None:
    lines = endpoint.console_lines([])
    assert not any("talosctl" in line for line in lines)
    assert parse_fingerprint("\n".join(lines)) == endpoint.fingerprint
    assert parse_addresses("\n".join(lines)) == []


def test_printed_addresses_parse_back(endpoint: MaintenanceEndpoint) -> None:
    addresses = ["192.0.2.10", "fdae:41e4:649b:9303:0:0:0:10"]
    console = _with_timestamps(endpoint.console_lines(addresses))
    assert parse_addresses(console) == ["192.0.2.10", "fdae:41e4:649b:9303::10"]


# -- parsers on real-shaped console text -------------------------------------------------------

def test_parse_addresses_from_a_capture_skips_foreign_kernel_lines() -> None:
    assert parse_addresses(CAPTURE) == ["192.0.2.56", "2001:db8:17ba:2200:5054:ff:feba:99ef"]


def test_parse_fingerprint_from_a_capture() -> None:
    assert parse_fingerprint(CAPTURE) == "rMWhs9V9Y30sbs9W5KNCgVRReKGrfvV0FwMtqEX4OW8="


def test_parsers_take_the_latest_block_when_talos_reprints() -> None:
    reprint = (
        '[   15.000001] [talos] this machine is reachable at: {"component": "controller-runtime"}\n'
        '[   15.000002] [talos] \t192.0.2.99 {"component": "controller-runtime"}\n'
        '[   15.000003] [talos] server certificate issued {"component": "controller-runtime", '
        '"fingerprint": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGw="}\n'
    )
    text = CAPTURE + reprint
    assert parse_addresses(text) == ["192.0.2.99"]
    assert parse_fingerprint(text) == "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGw="


def test_parse_addresses_without_tags_or_timestamps() -> None:
    text = "this machine is reachable at:\n\t192.0.2.7\n\tfe80::1\nserver certificate issued\n\t198.51.100.1\n"
    assert parse_addresses(text) == ["192.0.2.7", "fe80::1"]


def test_parsers_find_nothing_when_the_lines_are_absent() -> None:
    text = "[    3.000000] [talos] [initramfs] booting Talos v1.9.5\n[talos] boot sequence: done: 5s\n"
    assert parse_addresses(text) == []
    assert parse_fingerprint(text) is None
