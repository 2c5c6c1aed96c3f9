"""A small HTTP client for network power switches: stdlib urllib, a short timeout, credentials masked.

Why not `requests`: the plugs speak a handful of GETs and POSTs, and the harness ships as one
wheel whose dependencies every bench host has to install; urllib does the job. What urllib does
not do is done here once for every backend:

- every request has a timeout (connect and each read), so a plug that accepts and never answers
  is a BenchError after a few seconds, never a hung run;
- proxies from the environment are ignored: a plug sits on the bench's LAN, and a corporate
  `http_proxy` would swallow its requests (or log the credentials some of them carry in the URL);
- errors are BenchErrors naming the URL with its credentials masked (`mask_url`), because a
  Tasmota plug takes them as query parameters and an error message ends up in reports;
- HTTP basic auth, and digest auth (RFC 7616: SHA-256, SHA-512-256 and MD5, qop=auth), which
  Shelly Gen2+ devices demand with `algorithm=SHA-256`; urllib's own digest handler only knows
  MD5 and SHA-1.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BenchError

__all__ = ["DEFAULT_TIMEOUT_S", "BasicAuth", "DigestAuth", "DigestChallenge", "HttpError", "HttpResponse",
           "device_url_problem",
           "digest_authorization", "digest_response", "mask_url", "parse_challenge", "request", "request_json"]

DEFAULT_TIMEOUT_S = 3.0
MAX_BODY = 1 << 20  # a plug's answer is a few hundred bytes; more is not a plug talking
MASK = "***"
# Query parameters that carry credentials (Tasmota's user= and password=, and the usual suspects).
SECRET_PARAMETERS = frozenset({"user", "username", "password", "pass", "pwd", "token", "auth", "key", "apikey"})

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A plug never redirects; following one would resend credentials to wherever it points."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_opener.add_handler(_NoRedirect())


def mask_url(url: str) -> str:
    """The URL as it may be printed: user:password@ and credential query parameters replaced by ***.

    Parameter values are masked whatever their name's case; the rest of the URL is left as it was
    written, so the person reading the error still recognises which plug it is.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return MASK  # not a URL at all: nothing in it can be trusted to be printable
    netloc = parts.netloc
    if "@" in netloc:
        host = netloc.rpartition("@")[2]
        netloc = f"{MASK}@{host}"
    query = re.sub(r"(?i)(^|&)([^=&]*)=([^&]*)",
                   lambda m: f"{m[1]}{m[2]}={MASK}" if m[2].lower() in SECRET_PARAMETERS else m[0], parts.query)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str  # masked

    def json(self) -> Any:
        """The body as JSON; a BenchError naming the (masked) URL and the start of the body if it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            shown = self.body[:80].decode("utf-8", "replace")
            raise BenchError(f"{self.url} answered HTTP {self.status} with something that is not JSON "
                             f"({shown!r}): is this the right device and port?") from None


class HttpError(BenchError):
    """The device answered with an HTTP error status (after any authentication handshake)."""

    def __init__(self, message: str, *, status: int, url: str, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth (Shelly Gen1): sent with the first request, since the device never challenges twice."""

    user: str
    password: str = field(repr=False)

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")


@dataclass(frozen=True)
class DigestAuth:
    """HTTP digest auth: the first request goes without, the device's 401 challenge says how to answer.

    `cnonce` is a seam for tests (a fixed client nonce makes the response reproducible); left None,
    a random one is drawn per request.
    """

    user: str
    password: str = field(repr=False)
    cnonce: Callable[[], str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class DigestChallenge:
    realm: str
    nonce: str
    qop: str | None = None
    algorithm: str = "MD5"
    opaque: str | None = None


_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data).hexdigest(),
}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> DigestChallenge:
    """Read a `WWW-Authenticate: Digest ...` header, in whatever order the device puts its parameters."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a digest challenge: {scheme or header!r}")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read the digest challenge at {rest[pos:pos + 20]!r}")
        quoted, bare = m[2], m[3]
        params[m[1].lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        pos = m.end()
    if "realm" not in params or "nonce" not in params:
        raise ValueError("the digest challenge lacks a realm or a nonce")
    qops = [q.strip() for q in params["qop"].split(",")] if "qop" in params else []
    if qops and "auth" not in qops:
        raise ValueError(f"the digest challenge offers qop {params['qop']!r}; only 'auth' is supported")
    return DigestChallenge(realm=params["realm"], nonce=params["nonce"], qop="auth" if qops else None,
                           algorithm=params.get("algorithm", "MD5").upper(), opaque=params.get("opaque"))


def digest_response(*, algorithm: str, user: str, realm: str, password: str, method: str, uri: str, nonce: str,
                    nc: str = "00000001", cnonce: str = "", qop: str | None = "auth") -> str:
    """RFC 7616 section 3.4.1: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) with A1 = user:realm:password, A2 = method:uri.

    Without qop (RFC 2069 servers) the response is KD(H(A1), nonce:H(A2)).
    """
    digest = _HASHES.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"digest algorithm {algorithm!r} is not supported (only {', '.join(_HASHES)})")
    ha1 = digest(f"{user}:{realm}:{password}".encode())
    ha2 = digest(f"{method}:{uri}".encode())
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}".encode())
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


def digest_authorization(challenge: DigestChallenge, *, user: str, password: str, method: str, uri: str,
                         cnonce: str, nc: int = 1) -> str:
    """The `Authorization` header answering `challenge` for one request."""
    nc_text = f"{nc:08x}"
    response = digest_response(algorithm=challenge.algorithm, user=user, realm=challenge.realm, password=password,
                               method=method, uri=uri, nonce=challenge.nonce, nc=nc_text, cnonce=cnonce,
                               qop=challenge.qop)
    parts = [f'username="{user}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"', f'uri="{uri}"',
             f"algorithm={challenge.algorithm}"]
    if challenge.qop is not None:
        parts += [f"qop={challenge.qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    parts.append(f'response="{response}"')
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)


def request(method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
            auth: BasicAuth | DigestAuth | None = None, timeout: float = DEFAULT_TIMEOUT_S,
            what: str = "the device") -> HttpResponse:
    """One HTTP exchange (two with a digest challenge); any status below 300 is returned, the rest raised.

    Raises BenchError when the device cannot be reached or does not answer within `timeout`, and
    HttpError for an error status; every message names `what` and the masked URL, never a credential.
    """
    shown = mask_url(url)
    sent = dict(headers or {})
    if isinstance(auth, BasicAuth):
        sent["Authorization"] = auth.header()
    response = _exchange(method, url, body, sent, timeout, what, shown)
    if response.status == 401 and isinstance(auth, DigestAuth):
        offered = response.headers.get("www-authenticate", "")
        try:
            challenge = parse_challenge(offered)
        except ValueError as exc:
            raise HttpError(f"{what} at {shown} refused the request (HTTP 401) with a challenge this client cannot "
                            f"answer ({exc})", status=401, url=shown, body=response.body) from None
        parts = urllib.parse.urlsplit(url)
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
        cnonce = auth.cnonce() if auth.cnonce is not None else os.urandom(8).hex()
        sent["Authorization"] = digest_authorization(challenge, user=auth.user, password=auth.password,
                                                     method=method, uri=uri or "/", cnonce=cnonce)
        response = _exchange(method, url, body, sent, timeout, what, shown)
    if response.status == 401:
        why = ("refused the credentials" if auth is not None
               else "asks for credentials and none are configured")
        raise HttpError(f"{what} at {shown} {why} (HTTP 401): check the bench's secrets (and the environment "
                        "variables they name) against the device's login", status=401, url=shown,
                        body=response.body)
    if response.status >= 300:  # redirects are not followed (see _NoRedirect): a plug never sends one
        text = response.body[:120].decode("utf-8", "replace").strip()
        raise HttpError(f"{what} at {shown} answered HTTP {response.status}" + (f": {text}" if text else ""),
                        status=response.status, url=shown, body=response.body)
    return response


def request_json(method: str, url: str, *, payload: Any = None, auth: BasicAuth | DigestAuth | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, what: str = "the device") -> Any:
    """`request` with an optional JSON body, returning the decoded JSON answer (BenchError if it is not JSON)."""
    body = None if payload is None else json.dumps(payload).encode()
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return request(method, url, body=body, headers=headers, auth=auth, timeout=timeout, what=what).json()


def _exchange(method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float, what: str,
              shown: str) -> HttpResponse:
    """One request; every status comes back as a response, every failure to talk as a BenchError.

    The causes are dropped (`from None`): urllib's exceptions carry the full URL, credentials
    included, and a traceback would print them.
    """
    try:
        req = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    except ValueError as exc:
        raise BenchError(f"{what}: {shown} is not a URL this client can use ({exc})") from None
    try:
        with _opener.open(req, timeout=timeout) as answer:
            return HttpResponse(answer.status, _headers(answer.headers), _read(answer), shown)
    except urllib.error.HTTPError as exc:
        try:
            data = _read(exc)
        except (OSError, http.client.HTTPException):
            data = b""
        finally:
            exc.close()
        return HttpResponse(exc.code, _headers(exc.headers), data, shown)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise BenchError(_no_answer(what, shown, timeout)) from None
        raise BenchError(f"{what} at {shown} cannot be reached ({_plain(reason)}): is it powered, on the "
                         "network, and is the bench's url right?") from None
    except TimeoutError:
        raise BenchError(_no_answer(what, shown, timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"{what} at {shown} broke off the exchange ({_plain(exc)}): is this the right device "
                         "and port?") from None


def _read(answer: Any) -> bytes:
    data: bytes = answer.read(MAX_BODY + 1)
    return data[:MAX_BODY]


def _headers(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in (headers.items() if headers is not None else ())}


def _plain(reason: object) -> str:
    """The reason without anything that might echo the URL (an OSError's strerror, or the type's name)."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__ if not isinstance(reason, str) else reason


def _no_answer(what: str, shown: str, timeout: float) -> str:
    return (f"{what} at {shown} did not answer within {timeout:g} s: is it powered and on the network "
            "(a plug rebooting or off its Wi-Fi takes minutes to come back)?")


def device_url_problem(url: str) -> str | None:
    """Why `url` cannot name a plug in a bench file, or None: called by the bench sections' validators.

    Credentials in the URL (`http://admin:pw@plug`) are refused: the bench file is shared and
    checked in, so they belong in the bench's secrets, which the sections name instead.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https:// (e.g. http://plug-3.lab or http://192.0.2.7)"
    if not parts.hostname:
        return "names no host"
    if "@" in parts.netloc:
        return ("carries credentials; put them in the bench's secrets (secrets: {name: ENV_VAR}) and name the "
                "secrets in this section instead")
    if parts.path.strip("/") or parts.query or parts.fragment:
        return ("must be the device's address only (e.g. http://192.0.2.7), without a path or query: the driver "
                "adds the device's own paths")
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError as exc:
        return f"has a bad port ({exc})"
    return None
