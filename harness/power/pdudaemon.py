"""PDUDaemon: the PDU daemon LAVA labs run in front of their PDUs, asked over its HTTP listener.

A lab that already runs PDUDaemon keeps its PDUs' drivers, credentials and per-PDU serialisation
there; the harness only names a PDU (`hostname`, as in the daemon's `pdudaemon.conf` "pdus") and an
outlet (`port`), and asks:

    GET <url>/power/control/on|off?hostname=<pdu>&port=<n>&delay=0

(pdudaemon/httplistener.py and listener.py, pdudaemon 1.1.1). Facts from that source which shape
this driver:

- The daemon answers 200 "OK - accepted request" and nothing else on success. In 1.1.1 the answer
  comes after the PDU driver has run (the handler awaits the job), retries included; older
  daemons queued the job and answered at once. Either way a 200 is "accepted", never a read-back.
- `delay` is how long the daemon waits before acting. 1.1.1 defaults it to 0 for on/off (5 only
  for reboot) and logs a deprecation warning when it is given for on/off; older daemons defaulted
  to 5 s for every request. `delay=0` is sent so that a set() is not silently 5 s late on any
  version; the warning in the daemon's log is harmless.
- Any refusal is HTTP 500 "Invalid request": an unknown PDU hostname, a missing port, a driver
  that failed all its retries. The daemon does not say which, so the message lists all three.
- There is no way to ask a PDU's state, so `get()` is None (PowerControl reports "unknown").

The daemon has no authentication of its own; a lab that puts it behind a proxy with basic auth
names the user in the URL (`http://lab@pdu-host:16421`) and the password as a bench secret
(`password_secret`), never in the bench file. Messages show the URL without its user part.

Section: `power: {kind: pdudaemon, url: http://pdu-host:16421, hostname: pdu-1, port: 3}`.
"""

from __future__ import annotations

import base64
import http.client
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, StrictInt, StrictStr, field_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSection

DEFAULT_PORT = 16421  # PDUDaemon's listener port when its config names none
# What get() cannot know; kept on the switch so a status can say why it is "unknown".
NO_READ_BACK = ("PDUDaemon has no read-back: it only accepts on/off/reboot requests, so the outlet's "
                "state cannot be asked; a 200 means the daemon took (and, from 1.1, ran) the request")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The daemon never redirects; following one would resend the basic-auth header wherever it points."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


# Proxies from the environment are ignored: the daemon sits on the lab's network, and a corporate
# http_proxy would swallow its requests (or refuse them with a 403 that would read like ours).
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def masked(url: str) -> str:
    """The URL as messages show it: any `user:password@` replaced by `***@`, so a log never carries it."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PduDaemonOutlet:
    """One outlet of one PDU, switched through a PDUDaemon HTTP listener.

    `password` (from the bench's secrets) turns on basic auth for a daemon behind a proxy; the
    user is the URL's user part. `timeout_s` bounds each request: connecting, and the daemon's
    answer, which from 1.1 arrives only once the PDU has switched (its driver's retries included).
    """

    def __init__(self, url: str, hostname: str, port: int | str, *, timeout_s: float = 10.0,
                 password: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.user = urllib.parse.unquote(parts.username) if parts.username else None
        # The credentials travel in a header, never in the URL opened, so no error text can echo them.
        self.base = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
        self.hostname = hostname
        self.port = port
        self.timeout_s = timeout_s
        self.password = password
        self.description = f"PDUDaemon {masked(url)} PDU {hostname} port {port}"
        self.unknown_reason = NO_READ_BACK
        self.reads_back = False  # PowerControl: never compare a read-back (there is none)
        self.last_accepted: bool | None = None  # what the daemon last accepted, for a person reading a report

    def request_url(self, action: Literal["on", "off", "reboot"]) -> str:
        query = urllib.parse.urlencode({"hostname": self.hostname, "port": str(self.port), "delay": 0})
        return f"{self.base}/power/control/{action}?{query}"

    def set(self, on: bool) -> None:
        self._ask("on" if on else "off")
        self.last_accepted = on

    def get(self) -> bool | None:
        """Always None: see NO_READ_BACK. The last accepted request is `last_accepted`, not a state."""
        return None

    def _ask(self, action: Literal["on", "off", "reboot"]) -> None:
        url = self.request_url(action)
        request = urllib.request.Request(url, method="GET")
        if self.password is not None:
            token = base64.b64encode(f"{self.user or ''}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        what = f"PDUDaemon at {self.base} ({action} for PDU '{self.hostname}' port {self.port})"
        try:
            with _opener.open(request, timeout=self.timeout_s) as response:
                status, body = response.status, response.read(512).decode(errors="replace").strip()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(512).decode(errors="replace").strip()
            exc.close()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, TimeoutError):
                raise BenchError(f"{what}: no answer within {self.timeout_s:g} s ({url}); the outlet's state "
                                 "is unknown. Check that the daemon is up and reachable, and that the PDU answers "
                                 "it (the daemon answers once the PDU has switched)") from exc
            raise BenchError(f"{what}: cannot reach the daemon ({reason}) at {url}: is pdudaemon running with "
                             "\"listener\": \"http\" in its daemon section, on this host and port?") from exc
        if status == 200:
            return
        if status in (401, 403, 407):
            raise BenchError(f"{what}: HTTP {status} from {url}: the proxy in front of the "
                             "daemon refused the credentials (power.url's user, power.password_secret)")
        raise BenchError(f"{what}: HTTP {status} ({body or 'no body'}) from {url}: PDUDaemon "
                         f"refuses with 500 when '{self.hostname}' is not a PDU in its pdudaemon.conf \"pdus\", "
                         "when the port is missing, or when the PDU's driver failed all its retries; its log "
                         "says which")


class PduDaemonSection(PowerSection):
    """A bench's outlet behind PDUDaemon: the daemon's URL, the PDU's name in its config, and the outlet.

    Wire the board's supply to the outlet; the PDU and its credentials are configured in the
    daemon (pdudaemon.conf), not here.
    """

    kind: Literal["pdudaemon"]
    url: str = Field(min_length=1, description=f"the daemon's HTTP listener, e.g. http://pdu-host:{DEFAULT_PORT}")
    hostname: str = Field(min_length=1, description="the PDU's name in pdudaemon.conf \"pdus\"")
    port: StrictInt | StrictStr = Field(description="the outlet, as the PDU's driver numbers it")
    timeout_s: PositiveFloat = Field(default=10.0, description="longest wait for the daemon's answer")
    password_secret: str | None = Field(default=None, description="bench secret holding the basic-auth "
                                                                  "password of a proxy in front of the daemon")

    example: ClassVar[str | None] = f"{{kind: pdudaemon, url: http://pdu-host:{DEFAULT_PORT}, hostname: ..., port: N}}"

    @field_validator("url")
    @classmethod
    def _http_url_without_password(cls, url: str) -> str:
        """Refused in the file, before any run: a password here would be committed with the bench."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be the daemon's http:// or https:// URL, e.g. http://pdu-host:{DEFAULT_PORT}; "
                             f"got {masked(url)!r}")
        if parts.password is not None:
            raise ValueError(f"{masked(url)}: a password in the bench file would be committed with it; put the "
                             "user in the URL and the password in a bench secret named by power.password_secret")
        if parts.query or parts.fragment:
            raise ValueError(f"{masked(url)}: give the daemon's base URL only; the harness adds "
                             "/power/control/<action>?hostname=...&port=...")
        return url

    @field_validator("port")
    @classmethod
    def _port_given(cls, port: int | str) -> int | str:
        if isinstance(port, str) and not port.strip():
            raise ValueError("the outlet must not be empty")
        return port


def build(section: PduDaemonSection, context: PowerContext) -> PduDaemonOutlet:
    """The outlet's client; nothing is asked of the daemon here (the secret is read, so a missing one stops early)."""
    password = context.secret(section.password_secret) if section.password_secret else None
    return PduDaemonOutlet(section.url, section.hostname, section.port, timeout_s=section.timeout_s,
                           password=password)


BACKEND = PowerBackend(section=PduDaemonSection, build=build)
