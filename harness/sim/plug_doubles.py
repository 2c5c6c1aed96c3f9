"""Network smart plugs on loopback: Tasmota, Shelly Gen1 and Shelly Gen2+, answering as the devices do.

Each double is a stdlib HTTP server in a thread on 127.0.0.1 (a free port), with the device's
own URLs, JSON and authentication, so a power backend is tested on its real wire format and a
virtual board can be powered through it (`on_change(channel, on)` is called when a relay flips).

What each device does, as the doubles do it:

- Tasmota: `GET /cm?cmnd=Power%20On` (`Power<N>` on multi-relay devices) answers `{"POWER":"ON"}`
  (`POWER<N>` on a multi-relay device); with a web password set, a request without the right
  `user=`/`password=` gets HTTP 200 and `{"WARNING":"Need user=<username>&password=<password>"}`.
- Shelly Gen1: `GET /relay/<id>?turn=on|off` and `GET /relay/<id>` answer the relay's status
  (`{"ison": true, ...}`); with login restricted, HTTP basic auth or 401.
- Shelly Gen2+: `POST /rpc` with JSON-RPC (`Switch.Set`, `Switch.GetStatus`); with auth enabled, a
  401 carrying `WWW-Authenticate: Digest qop="auth", realm="<device id>", nonce="...",
  algorithm=SHA-256`, user always `admin`, the response checked per RFC 7616.

Faults (`double.fault = ...`, None to heal): `down` (the port is closed: connection refused),
`http-500`, `garbage` (HTTP 200 with a body that is not JSON), `wrong-readback` (the device
reports the opposite of its relay), `stall` (accepts, never answers: the client must time out).
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

Fault = Literal["down", "http-500", "garbage", "wrong-readback", "stall"]
FAULTS: tuple[Fault, ...] = ("down", "http-500", "garbage", "wrong-readback", "stall")
OnChange = Callable[[int, bool], object]
_AUTH_PARAM = re.compile(r'([A-Za-z0-9_-]+)=(?:"([^"]*)"|([^\s,]*))')
STALL_LIMIT_S = 30.0  # a stalled handler gives up eventually, so a forgotten double cannot keep a thread forever


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, double: PlugDouble) -> None:
        self.double = double
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `double.requests`, not stderr."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        double = self.server.double
        with double.lock:
            double.requests.append(f"{method} {self.path}")
            double.authorizations.append(self.headers.get("Authorization"))
        fault = double.fault
        if fault == "stall":
            double.unstalled.wait(STALL_LIMIT_S)
            return
        if fault == "http-500":
            self._send(500, b"Internal Server Error", "text/plain")
            return
        if fault == "garbage":
            self._send(200, b"<html>\x00\xffnot json", "application/json")
            return
        status, headers, answer = double.handle(method, self.path, dict(self.headers.items()), body)
        self._send(status, answer, headers.pop("Content-Type", "application/json"), headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class PlugDouble(abc.ABC):
    """What every plug double shares: the server thread, the relays, the faults and `on_change`.

    `states[channel]` is each relay's contact (False at start, as after `PowerOnState 0`);
    `requests` lists "METHOD path" as received, `authorizations` each request's Authorization header.
    """

    def __init__(self, channels: range, *, on_change: OnChange | None = None) -> None:
        self.states = dict.fromkeys(channels, False)
        self.on_change = on_change
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        self.lock = threading.Lock()
        self.unstalled = threading.Event()
        self._fault: Fault | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def fault(self) -> Fault | None:
        return self._fault

    @fault.setter
    def fault(self, fault: Fault | None) -> None:
        """Switch a fault on (None heals): `down` closes the port, healing reopens the same one."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown plug fault {fault!r}; known: {', '.join(FAULTS)}")
        if self._fault == "stall":
            self.unstalled.set()
        if fault == "stall":
            self.unstalled.clear()
        if fault == "down" and self._server is not None:
            self._stop()
        self._fault = fault
        if fault != "down" and self._server is None:
            self._start()

    def switch(self, channel: int, on: bool) -> None:
        """Flip a relay as the device would (and tell the board behind it when the contact changes)."""
        with self.lock:
            changed = self.states[channel] != on
            self.states[channel] = on
        if changed and self.on_change is not None:
            self.on_change(channel, on)

    def reported(self, channel: int) -> bool:
        """The state the device says it is in: the truth, unless `wrong-readback` is on."""
        return self.states[channel] != (self._fault == "wrong-readback")

    @abc.abstractmethod
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request as the device answers it: (status, headers, body). Each device double says how."""

    def close(self) -> None:
        self.unstalled.set()
        self._stop()

    def __enter__(self) -> PlugDouble:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _start(self) -> None:
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{type(self).__name__}:{self.port}",
                                        daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, dict(headers or {}), json.dumps(payload, separators=(",", ":")).encode()


class TasmotaDouble(PlugDouble):
    """A Tasmota plug or relay board: `relays` relays numbered from 1, an optional web password.

    Tasmota's web user is `admin`; with `password` set, `/cm` demands `user=`/`password=` in the query.
    """

    def __init__(self, relays: int = 1, *, user: str = "admin", password: str | None = None,
                 on_change: OnChange | None = None) -> None:
        self.relays = relays
        self.user = user
        self.password = password
        super().__init__(range(1, relays + 1), on_change=on_change)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(path)
        if parts.path != "/cm":
            return 404, {"Content-Type": "text/plain"}, b"File Not Found"
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        if self.password is not None and (query.get("user") != self.user or query.get("password") != self.password):
            return _json(200, {"WARNING": "Need user=<username>&password=<password>"})
        command = query.get("cmnd", "").strip()
        if not command:
            return _json(200, {"WARNING": "Enter command cmnd="})
        word, _, argument = command.partition(" ")
        name = word.lower()
        if not name.startswith("power"):
            return _json(200, {"Command": "Unknown"})
        index = name[len("power"):] or "1"
        if not index.isdigit() or int(index) not in self.states:
            return _json(200, {"Command": "Unknown"})
        relay = int(index)
        verb = argument.strip().lower()
        if verb in ("on", "1"):
            self.switch(relay, True)
        elif verb in ("off", "0"):
            self.switch(relay, False)
        elif verb in ("toggle", "2"):
            self.switch(relay, not self.states[relay])
        elif verb:
            return _json(200, {"Command": "Error"})
        key = "POWER" if self.relays == 1 else f"POWER{relay}"
        return _json(200, {key: "ON" if self.reported(relay) else "OFF"})


class ShellyGen1Double(PlugDouble):
    """A Shelly Gen1 relay device (Shelly 1, Plug S, 2.5 ...): relays from 0, optional basic-auth login."""

    def __init__(self, relays: int = 1, *, user: str | None = None, password: str | None = None,
                 on_change: OnChange | None = None) -> None:
        self.user = user
        self.password = password
        super().__init__(range(relays), on_change=on_change)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.password is not None and not self._authorized(headers.get("Authorization", "")):
            return 401, {"WWW-Authenticate": 'Basic realm="shelly1-98CDAC1F0B3A"', "Content-Type": "text/plain"}, \
                b"401 Unauthorized"
        parts = urllib.parse.urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 2 or segments[0] != "relay" or not segments[1].isdigit() \
                or int(segments[1]) not in self.states:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        relay = int(segments[1])
        query = dict(urllib.parse.parse_qsl(parts.query))
        turn = query.get("turn")
        if turn == "on":
            self.switch(relay, True)
        elif turn == "off":
            self.switch(relay, False)
        elif turn == "toggle":
            self.switch(relay, not self.states[relay])
        elif turn is not None:
            return 400, {"Content-Type": "text/plain"}, b"Bad turn!"
        return _json(200, {"ison": self.reported(relay), "has_timer": False, "timer_started": 0,
                           "timer_duration": 0, "timer_remaining": 0, "overpower": False, "source": "http"})

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.user and password == self.password


class ShellyGen2Double(PlugDouble):
    """A Shelly Gen2+ device (Plus 1, Plus Plug S, Pro 4PM ...): `Switch` components from 0, optional digest auth.

    `realm` is the device id (e.g. `shellyplus1-a8032ab12345`), as the devices use it. Each 401
    issues a fresh nonce; an Authorization whose nonce this double never issued, whose user is not
    `admin`, whose uri is not the request's or whose response does not match is refused with 401.
    """

    USER = "admin"

    def __init__(self, switches: int = 1, *, password: str | None = None,
                 realm: str = "shellyplus1-a8032ab12345", on_change: OnChange | None = None) -> None:
        self.password = password
        self.realm = realm
        self.nonces: set[str] = set()
        self.methods: list[str] = []
        super().__init__(range(switches), on_change=on_change)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if urllib.parse.urlsplit(path).path != "/rpc" or method != "POST":
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        if self.password is not None and not self._authorized(method, path, headers.get("Authorization", "")):
            nonce = f"{int.from_bytes(os.urandom(4), 'big'):x}"
            with self.lock:
                self.nonces.add(nonce)
            challenge = f'Digest qop="auth", realm="{self.realm}", nonce="{nonce}", algorithm=SHA-256'
            return _json(401, {"code": 401, "message": "Unauthorized"}, {"WWW-Authenticate": challenge})
        try:
            frame = json.loads(body)
            call_id, name, params = frame.get("id"), frame["method"], frame.get("params") or {}
        except (ValueError, KeyError, AttributeError):
            return _json(400, {"code": -32700, "message": "Parse error"})
        self.methods.append(name)
        answer: dict[str, Any] = {"id": call_id, "src": self.realm}
        switch = params.get("id", 0)
        if name not in ("Switch.Set", "Switch.GetStatus"):
            return _json(404, {**answer, "error": {"code": 404, "message": f"No handler for {name}"}})
        if not isinstance(switch, int) or switch not in self.states:
            missing = {"code": -105, "message": f"Argument 'id', value {switch} not found!"}
            return _json(400, {**answer, "error": missing})
        if name == "Switch.Set":
            on = params.get("on")
            if not isinstance(on, bool):
                return _json(400, {**answer, "error": {"code": -103, "message": "Missing required argument 'on'!"}})
            was_on = self.reported(switch)
            self.switch(switch, on)
            return _json(200, {**answer, "result": {"was_on": was_on}})
        status = {"id": switch, "source": "HTTP_in", "output": self.reported(switch), "temperature": {"tC": 41.2}}
        return _json(200, {**answer, "result": status})

    def _authorized(self, method: str, path: str, header: str) -> bool:
        """RFC 7616 with SHA-256, written out here rather than borrowed from the client it checks."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False
        fields = {key.lower(): quoted if quoted else bare for key, quoted, bare in _AUTH_PARAM.findall(rest)}
        if fields.get("username") != self.USER or fields.get("realm") != self.realm \
                or fields.get("uri") != path or fields.get("nonce") not in self.nonces \
                or fields.get("algorithm", "").upper() != "SHA-256" or fields.get("qop") != "auth":
            return False

        def sha256(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()

        ha1 = sha256(f"{self.USER}:{self.realm}:{self.password}")
        ha2 = sha256(f"{method}:{path}")
        expected = sha256(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))
