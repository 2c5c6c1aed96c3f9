"""Tasmota plugs and relay boards over HTTP: `GET /cm?cmnd=Power%20On`, read back with bare `Power`.

The device answers every Power command with the relay's state as JSON, `{"POWER":"ON"}` (on a
multi-relay device `{"POWER2":"OFF"}` for relay 2). With a web password set, Tasmota takes the
credentials as `user=`/`password=` query parameters (its web user is `admin`), so the URL of every
request carries them: the driver builds those URLs only for the request itself, and everything it
prints (its description, every error) names the URL through `mask_url`.

Without the right credentials Tasmota still answers HTTP 200, with `{"WARNING":"Need
user=<username>&password=<password>"}`; that is reported as a bench error about the secrets, not
as a relay state. Set `PowerOnState 0` on the plug (the console command), so the board stays off
when the plug itself loses and regains mains power.

Bench section: `power: {kind: tasmota, url: http://plug-3.lab, relay: 1, password_secret: plug_password}`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from harness.errors import BenchError
from harness.power.base import PowerBackend, PowerContext, PowerSwitch, maybe_inverted
from harness.power.http_device import HttpDeviceSection
from harness.transports.http import DEFAULT_TIMEOUT_S, mask_url, request_json

RELAYS = range(1, 33)  # Tasmota numbers relays Power1..Power32
TASMOTA_USER = "admin"  # the only web user Tasmota has


class TasmotaPlug:
    """One relay of a Tasmota device; `set` returns once the device has answered the command.

    `get()` asks the device (bare `Power<N>`), so a relay that did not switch is seen by the
    read-back check in PowerControl, not assumed from what was commanded.
    """

    def __init__(self, url: str, relay: int = 1, *, user: str | None = None, password: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.relay = relay
        self._credentials = {"user": user or TASMOTA_USER, "password": password} if password else {}
        self.timeout_s = timeout_s
        self.description = f"Tasmota plug {mask_url(self.url)} relay {relay}"

    def set(self, on: bool) -> None:
        self._state(self._ask(f"{self._command()} {'On' if on else 'Off'}"))

    def get(self) -> bool | None:
        return self._state(self._ask(self._command()))

    def _command(self) -> str:
        # Bare `Power` is relay 1 on every device; `Power1` would answer POWER1 on some single-relay builds.
        return "Power" if self.relay == 1 else f"Power{self.relay}"

    def _ask(self, command: str) -> Any:
        # The credentials go first so a URL cut short in a log still hides them behind the masked names.
        query = urllib.parse.urlencode({**self._credentials, "cmnd": command}, quote_via=urllib.parse.quote)
        answer = request_json("GET", f"{self.url}/cm?{query}", timeout=self.timeout_s, what=self.description)
        if not isinstance(answer, dict):
            raise BenchError(f"{self.description} answered {answer!r} to {command!r}, not a JSON object: is this a "
                             "Tasmota device?")
        return answer

    def _state(self, answer: dict[str, Any]) -> bool:
        if "WARNING" in answer:
            needs = "refused the credentials" if self._credentials else "asks for credentials and none are configured"
            raise BenchError(f"{self.description} {needs} (it answered WARNING: {answer['WARNING']}): set the "
                             "section's password_secret (and user_secret if not admin) and export the variables "
                             "the bench's secrets name")
        keys = [f"POWER{self.relay}"] + (["POWER"] if self.relay == 1 else [])
        value = next((answer[key] for key in keys if key in answer), None)
        if not isinstance(value, str) or value.upper() not in ("ON", "OFF"):
            raise BenchError(f"{self.description}: the device answered {_shown(answer)} without {keys[0]} ON/OFF: "
                             f"does it have relay {self.relay}, and are its StateText1/2 still OFF/ON?")
        return value.upper() == "ON"


def _shown(answer: dict[str, Any]) -> str:
    text = str(answer)
    return text if len(text) <= 120 else text[:117] + "..."


class TasmotaSection(HttpDeviceSection):
    """A bench's Tasmota plug or relay board, reached over HTTP on the bench's network.

    Credentials never appear in the bench file: `password_secret` (and `user_secret`, if the user is
    not Tasmota's `admin`) name entries of the bench's `secrets:`, which name environment variables.
    """

    kind: Literal["tasmota"]
    relay: int = Field(default=1, strict=True, description="relay number as Tasmota counts (Power1..), from 1")
    user_secret: str | None = Field(default=None, description="bench secret holding the web user (default admin)")
    password_secret: str | None = Field(default=None, description="bench secret holding the web password")

    example: ClassVar[str | None] = "{kind: tasmota, url: http://plug-3.lab, relay: 1}"

    @field_validator("relay")
    @classmethod
    def _relay_exists(cls, relay: int) -> int:
        if relay not in RELAYS:
            raise ValueError(f"relay {relay} does not exist on a Tasmota device; relays are Power1..Power32, from 1")
        return relay

    @model_validator(mode="after")
    def _user_needs_password(self) -> TasmotaSection:
        if self.user_secret is not None and self.password_secret is None:
            raise ValueError("user_secret without password_secret: Tasmota only asks for a user with a web password")
        return self


def build(section: TasmotaSection, context: PowerContext) -> PowerSwitch:
    """Read the credentials now (an unset secret stops the run before any power-on); touch nothing."""
    password = context.secret(section.password_secret) if section.password_secret else None
    user = context.secret(section.user_secret) if section.user_secret else None
    plug = TasmotaPlug(section.url, section.relay, user=user, password=password, timeout_s=section.timeout_s)
    return maybe_inverted(plug, section.invert)


BACKEND = PowerBackend(section=TasmotaSection, build=build)
