"""Shelly Gen1 relays (Shelly 1, 1PM, Plug S, 2.5 ...) over HTTP: `GET /relay/<id>?turn=on|off`.

Both the command and the bare `GET /relay/<id>` answer the relay's status as JSON, whose `ison`
is the contact's state; `get()` asks the device, so PowerControl's read-back check sees a relay
that did not switch. With "restrict login" set, the device wants HTTP basic auth on every request
(user and password both configurable there, so both come from the bench's secrets).

Set the device's "power on default mode" to OFF, so the board stays off when the plug itself
loses and regains mains power.

Bench section: `power: {kind: shelly-gen1, url: http://shelly1-98cdac1f0b3a.lab, relay: 0}`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSwitch, maybe_inverted
from harness.power.http_device import HttpDeviceSection
from harness.transports.http import DEFAULT_TIMEOUT_S, BasicAuth, mask_url, request_json

RELAYS = range(4)  # the largest Gen1 relay device (Shelly 4Pro) has relays 0..3


class ShellyGen1Relay:
    """One relay of a Shelly Gen1 device, numbered from 0 as in its API."""

    def __init__(self, url: str, relay: int = 0, *, auth: BasicAuth | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.relay = relay
        self.auth = auth
        self.timeout_s = timeout_s
        self.description = f"Shelly Gen1 {mask_url(self.url)} relay {relay}"

    def set(self, on: bool) -> None:
        self._ison(self._ask(f"?turn={'on' if on else 'off'}"))

    def get(self) -> bool | None:
        return self._ison(self._ask(""))

    def _ask(self, query: str) -> Any:
        return request_json("GET", f"{self.url}/relay/{self.relay}{query}", auth=self.auth, timeout=self.timeout_s,
                            what=self.description)

    def _ison(self, answer: Any) -> bool:
        state = answer.get("ison") if isinstance(answer, dict) else None
        if not isinstance(state, bool):
            shown = str(answer)
            raise BenchError(f"{self.description} answered {shown[:120]!r} without a true/false 'ison': is this a "
                             f"Gen1 Shelly (a Gen2+ device needs kind shelly-gen2) with relay {self.relay}?")
        return state


class ShellyGen1Section(HttpDeviceSection):
    """A bench's Shelly Gen1 relay; credentials, if login is restricted, come from the bench's secrets."""

    kind: Literal["shelly-gen1"]
    relay: int = Field(default=0, strict=True, description="relay index as in the device's API, from 0")
    user_secret: str | None = Field(default=None, description="bench secret holding the login user")
    password_secret: str | None = Field(default=None, description="bench secret holding the login password")

    example: ClassVar[str | None] = "{kind: shelly-gen1, url: http://192.0.2.7, relay: 0}"

    @field_validator("relay")
    @classmethod
    def _relay_exists(cls, relay: int) -> int:
        if relay not in RELAYS:
            raise ValueError(f"relay {relay} does not exist on a Shelly Gen1 device; relays are numbered from 0 "
                             f"(0..{RELAYS.stop - 1})")
        return relay

    @model_validator(mode="after")
    def _both_or_neither(self) -> ShellyGen1Section:
        if (self.user_secret is None) != (self.password_secret is None):
            raise ValueError("give both user_secret and password_secret (restricted login wants both) or neither")
        return self


def build(section: ShellyGen1Section, context: PowerContext) -> PowerSwitch:
    """Read the credentials now (an unset secret stops the run before any power-on); touch nothing."""
    auth = None
    if section.user_secret and section.password_secret:
        auth = BasicAuth(context.secret(section.user_secret), context.secret(section.password_secret))
    relay = ShellyGen1Relay(section.url, section.relay, auth=auth, timeout_s=section.timeout_s)
    return maybe_inverted(relay, section.invert)


BACKEND = PowerBackend(section=ShellyGen1Section, build=build)
