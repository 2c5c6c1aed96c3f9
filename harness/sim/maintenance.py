"""A stand-in for the Talos maintenance API, so maintenance gates run without a board.

It serves TLS with a certificate it issued itself and offers ALPN `h2`, as the gRPC server of a
board in maintenance mode does, and it prints the console lines such a board prints, carrying
the fingerprint of that same certificate. It speaks no gRPC: after the handshake it only waits
for the client to hang up, which is all a reachability and fingerprint probe needs.

The console wording follows Talos' own log calls (siderolabs/talos,
internal/app/machined/pkg/controllers/runtime/maintenance_service_inform.go and
config.AcquireController's `entering maintenance service`) and a published capture of
them on a serial console.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from cryptography.x509.oid import NameOID

_ACQUIRE = {"component": "controller-runtime", "controller": "config.AcquireController"}
_INFORM = {"component": "controller-runtime", "controller": "runtime.MaintenanceServiceInformController"}
_CLIENT_IDLE_S = 5.0  # a client that neither talks nor hangs up is dropped after this


def _talos_line(message: str, fields: dict[str, str]) -> str:
    """One line as Talos' zap console encoder writes it into the kernel log (timestamp added by the board)."""
    return f"[talos] {message} {json.dumps(fields)}"


def _self_signed(host: str) -> tuple[bytes, bytes, x509.Certificate]:
    """A fresh key and self-signed certificate, as each maintenance boot issues a new one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "talos maintenance")])
    ips = {ipaddress.ip_address("127.0.0.1")}
    with contextlib.suppress(ValueError):
        ips.add(ipaddress.ip_address(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip) for ip in sorted(ips, key=str)]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return cert.public_bytes(Encoding.PEM), key_pem, cert


class MaintenanceEndpoint:
    """TLS listener in a background thread; `port=0` picks a free port, read it back from `.port`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        cert_pem, key_pem, cert = _self_signed(host)
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.fingerprint = base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.set_alpn_protocols(["h2"])
        # ssl loads a key pair only from files; they live just long enough to be read.
        with tempfile.TemporaryDirectory(prefix="talos-maint-") as tmp:
            cert_file, key_file = Path(tmp, "server.crt"), Path(tmp, "server.key")
            cert_file.write_bytes(cert_pem)
            key_file.write_bytes(key_pem)
            self._context.load_cert_chain(cert_file, key_file)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(16)
        self._listener.settimeout(0.05)  # lets the accept loop notice close() promptly
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="sim-maintenance", daemon=True)
        self._thread.start()

    def console_lines(self, addresses: list[str]) -> list[str]:
        """The lines a board prints on entering maintenance mode, reachable at `addresses`.

        Like Talos, the talosctl hint is printed only when there is an address to put in it.
        """
        lines = [
            _talos_line("entering maintenance service", _ACQUIRE),
            _talos_line("this machine is reachable at:", _INFORM),
            *(_talos_line(f"\t{address}", _INFORM) for address in addresses),
            _talos_line("server certificate issued", {**_INFORM, "fingerprint": self.fingerprint}),
        ]
        if addresses:
            first = addresses[0]
            lines += [
                _talos_line("upload configuration using talosctl:", _INFORM),
                _talos_line(f"\ttalosctl apply-config --insecure --nodes {first} --file <config.yaml>", _INFORM),
                _talos_line("optionally with node fingerprint check:", _INFORM),
                _talos_line(f"\ttalosctl apply-config --insecure --nodes {first} --cert-fingerprint "
                            f"'{self.fingerprint}' --file <config.yaml>", _INFORM),
            ]
        return lines

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            with self._lock:
                self._clients.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="sim-maintenance-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Handshake, then read until the client hangs up: a probe sees a live, polite server."""
        current = conn
        try:
            conn.settimeout(_CLIENT_IDLE_S)
            with self._context.wrap_socket(conn, server_side=True) as tls:
                with self._lock:  # wrapping moved the descriptor to `tls`: close() must see that one
                    self._clients.discard(conn)
                    self._clients.add(tls)
                    current = tls
                    self.handshakes += 1
                while tls.recv(4096):
                    pass
        except OSError:
            pass  # client went away mid-handshake or mid-read, or close() cut it off
        finally:
            with self._lock:
                self._clients.discard(current)
            current.close()

    def close(self) -> None:
        """Stop listening and drop open clients; afterwards the port refuses connections."""
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)
        with self._lock:
            clients, self._clients = list(self._clients), set()
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def __enter__(self) -> MaintenanceEndpoint:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
