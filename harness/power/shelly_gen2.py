"""Shelly Gen2+ switches (Plus 1, Plus Plug S, Pro 4PM, Gen3 ...) over HTTP JSON-RPC: `POST /rpc`.

`Switch.Set` `{"id":0,"on":true}` switches, `Switch.GetStatus` `{"id":0}` reads back `result.output`;
`get()` asks the device, so PowerControl's read-back check sees a switch that did not switch.

With authentication enabled the device answers every request with 401 and a challenge
`WWW-Authenticate: Digest qop="auth", realm="<device id>", nonce="...", algorithm=SHA-256`, and
wants it answered per RFC 7616 with SHA-256; the user is always `admin`, only the password is set
(so only `password_secret` is named here). harness.transports.http does the digest.

Set the switch's "initial state" (`initial_state: off` in Switch.SetConfig) so the board stays off
when the device itself loses and regains mains power.

Bench section: `power: {kind: shelly-gen2, url: http://192.0.2.8, switch: 0, password_secret: plug_password}`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSwitch, maybe_inverted
from harness.power.http_device import HttpDeviceSection
from harness.transports.http import DEFAULT_TIMEOUT_S, DigestAuth, HttpError, mask_url, request_json

SHELLY_USER = "admin"  # Gen2+ devices have this one user
SWITCHES = range(4)  # the largest Gen2 switch device (Pro 4PM) has switches 0..3


class ShellyGen2Switch:
    """One `Switch` component of a Shelly Gen2+ device, numbered from 0 as in its API."""

    def __init__(self, url: str, switch: int = 0, *, password: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.switch = switch
        self.auth = DigestAuth(SHELLY_USER, password) if password else None
        self.timeout_s = timeout_s
        self.description = f"Shelly Gen2 {mask_url(self.url)} switch {switch}"
        self._ids = itertools.count(1)

    def set(self, on: bool) -> None:
        self._call("Switch.Set", {"id": self.switch, "on": on})

    def get(self) -> bool | None:
        result = self._call("Switch.GetStatus", {"id": self.switch})
        output = result.get("output")
        if not isinstance(output, bool):
            raise BenchError(f"{self.description}: Switch.GetStatus answered without a true/false 'output' "
                             f"({str(result)[:120]!r})")
        return output

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        call_id = next(self._ids)
        try:
            answer = request_json("POST", f"{self.url}/rpc", payload={"id": call_id, "method": method,
                                                                        "params": params},
                                  auth=self.auth, timeout=self.timeout_s, what=self.description)
        except HttpError as exc:
            # Over HTTP a failed call comes with an error status and the JSON-RPC error frame as its body.
            answer = _rpc_error_frame(exc.body)
            if exc.status == 401 or answer is None:
                raise
        if not isinstance(answer, dict):
            raise BenchError(f"{self.description} answered {str(answer)[:120]!r} to {method}, not a JSON-RPC frame")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {"message": answer["error"]}
            raise BenchError(f"{self.description}: {method} failed with error {error.get('code')}: "
                             f"{error.get('message')} (does the device have switch {self.switch}?)")
        result = answer.get("result")
        if not isinstance(result, dict):
            raise BenchError(f"{self.description} answered {method} without a result ({str(answer)[:120]!r}): is "
                             "this a Gen2+ Shelly (a Gen1 device needs kind shelly-gen1)?")
        return result


def _rpc_error_frame(body: bytes) -> dict[str, Any] | None:
    try:
        frame = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return frame if isinstance(frame, dict) and "error" in frame else None


class ShellyGen2Section(HttpDeviceSection):
    """A bench's Shelly Gen2+ switch; the password, if authentication is on, comes from the bench's secrets."""

    kind: Literal["shelly-gen2"]
    switch: int = Field(default=0, strict=True, description="Switch component id as in the device's API, from 0")
    password_secret: str | None = Field(default=None, description="bench secret holding the device password "
                                                                  "(the user is always admin)")

    example: ClassVar[str | None] = "{kind: shelly-gen2, url: http://192.0.2.8, switch: 0}"

    @field_validator("switch")
    @classmethod
    def _switch_exists(cls, switch: int) -> int:
        if switch not in SWITCHES:
            raise ValueError(f"switch {switch} does not exist on a Shelly Gen2+ device; switches are numbered from 0 "
                             f"(0..{SWITCHES.stop - 1})")
        return switch


def build(section: ShellyGen2Section, context: PowerContext) -> PowerSwitch:
    """Read the password now (an unset secret stops the run before any power-on); touch nothing."""
    password = context.secret(section.password_secret) if section.password_secret else None
    switch = ShellyGen2Switch(section.url, section.switch, password=password, timeout_s=section.timeout_s)
    return maybe_inverted(switch, section.invert)


BACKEND = PowerBackend(section=ShellyGen2Section, build=build)
