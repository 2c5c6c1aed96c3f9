"""Reach a Talos maintenance API and tie it to the fingerprint the board printed on its console.

A board in maintenance mode serves its API on TCP 50000 with a certificate it issued itself, and
prints that certificate's fingerprint on the console. Reading the fingerprint from the console
and finding the same one on the wire proves the gate talks to *this* board, not to whatever else
answers at that address (a stale DHCP lease, a neighbour still in maintenance mode).

Fingerprint format (confirmed in Talos source, not guessed): base64 (standard alphabet, padded)
of the SHA-256 of the leaf certificate's DER-encoded SubjectPublicKeyInfo. Talos'
`runtime.MaintenanceServiceInformController` (siderolabs/talos,
internal/app/machined/pkg/controllers/runtime/maintenance_service_inform.go) logs
`x509.SPKIFingerprintFromPEM(...).String()`, and siderolabs/crypto x509/fingerprint defines that
as `sha256(cert.RawSubjectPublicKeyInfo)` rendered by `base64.StdEncoding`. It is the value
`talosctl apply-config --cert-fingerprint` takes. Because it hashes the key rather than the whole
certificate, it stays the same when Talos renews the certificate over the same key.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAINTENANCE_PORT = 50000

# Talos lines reach the console as `[   12.345678] [talos] <message> {json fields}`; the kernel
# timestamp and the `[talos]` tag are both optional so text from `talosctl dmesg` or a plain log
# parses the same way.
_KERNEL_TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_TALOS_TAG = re.compile(r"^\[talos\]\s?")
_JSON_FIELDS = re.compile(r"\s*\{.*\}\s*$")
_REACHABLE_AT = "this machine is reachable at:"
_FINGERPRINT = re.compile(r'server certificate issued\b.*?"fingerprint":\s*"([A-Za-z0-9+/=_-]+)"')


@dataclass(frozen=True)
class MaintenanceProbe:
    """What one connection attempt to the maintenance API showed.

    `fingerprint_matches` is None when there was nothing to compare: no expected fingerprint
    was given, or the API was not reached.
    """

    reachable: bool
    fingerprint: str | None = None
    fingerprint_matches: bool | None = None
    alpn: str | None = None
    error: str | None = None


def spki_fingerprint(cert_der: bytes) -> str:
    """The fingerprint Talos prints for a certificate, from the certificate's DER bytes."""
    spki = x509.load_der_x509_certificate(cert_der).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def host_port(host: str, port: int) -> str:
    """`host:port`, with IPv6 literals bracketed so the port can't be mistaken for a group."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def probe_maintenance(host: str, port: int = MAINTENANCE_PORT, *, expected_fingerprint: str | None = None,
                      timeout: float = 5.0) -> MaintenanceProbe:
    """Connect with TLS, read the served certificate and compare its fingerprint.

    The chain is not verified: the certificate is self-issued, exactly why `talosctl --insecure`
    exists. The fingerprint comparison is what replaces chain verification. ALPN offers `h2`
    because Talos serves gRPC, whose servers may refuse a TLS client that doesn't offer it.
    Never raises for network trouble: an unreachable API is a finding, reported in `error`.
    """
    where = host_port(host, port)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return MaintenanceProbe(reachable=False, error=f"connection to {where} refused (nothing listens there)")
    except TimeoutError:
        return MaintenanceProbe(reachable=False, error=f"connection to {where} timed out after {timeout:g} s")
    except OSError as exc:
        return MaintenanceProbe(reachable=False, error=f"cannot connect to {where}: {exc.strerror or exc}")
    try:
        with context.wrap_socket(raw) as tls:
            cert_der = tls.getpeercert(binary_form=True)
            alpn = tls.selected_alpn_protocol()
    except TimeoutError:
        return MaintenanceProbe(reachable=False,
                                error=f"TLS handshake with {where} timed out after {timeout:g} s (port open, no TLS)")
    except (ssl.SSLError, OSError) as exc:
        return MaintenanceProbe(reachable=False, error=f"TLS handshake with {where} failed: {exc}")
    finally:
        raw.close()
    if not cert_der:
        return MaintenanceProbe(reachable=True, alpn=alpn, error=f"{where} presented no certificate",
                                fingerprint_matches=None if expected_fingerprint is None else False)
    fingerprint = spki_fingerprint(cert_der)
    matches = None if expected_fingerprint is None else fingerprint == expected_fingerprint.strip()
    return MaintenanceProbe(reachable=True, fingerprint=fingerprint, fingerprint_matches=matches, alpn=alpn)


def _talos_message(line: str) -> tuple[str, bool]:
    """A console line reduced to the Talos message (no timestamp, tag or JSON fields), and whether it was tagged."""
    line = _KERNEL_TS.sub("", line.strip("\r\n"))
    tagged = bool(_TALOS_TAG.match(line))
    if tagged:
        line = _TALOS_TAG.sub("", line)
    return _JSON_FIELDS.sub("", line).strip(), tagged


def _address(message: str) -> str | None:
    try:
        return str(ipaddress.ip_address(message))
    except ValueError:
        return None


def parse_fingerprint(console_text: str) -> str | None:
    """The fingerprint from the last `server certificate issued` line.

    The last one, because Talos prints the line again whenever the fingerprint changes, and the
    API serves the newest certificate.
    """
    found = _FINGERPRINT.findall(console_text)
    return found[-1] if found else None


def parse_addresses(console_text: str) -> list[str]:
    """The addresses listed under the last `this machine is reachable at:` line.

    The last block, because Talos reprints it whenever the addresses change. On a console,
    kernel lines from drivers can land between the Talos lines: when the header carries the
    `[talos]` tag, untagged lines are skipped as foreign, and the block ends at the first
    tagged line that isn't an address. Without tags, the first non-address line ends it.
    """
    addresses: list[str] = []
    block_tagged = False
    collecting = False
    for line in console_text.splitlines():
        message, tagged = _talos_message(line)
        if message.endswith(_REACHABLE_AT):
            addresses, block_tagged, collecting = [], tagged, True
            continue
        if not collecting or (block_tagged and not tagged):
            continue
        address = _address(message)
        if address is None:
            collecting = False
        else:
            addresses.append(address)
    return addresses
