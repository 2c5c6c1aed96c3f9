"""What every power device reached over HTTP has in its bench section: its address, a timeout, invert.

The address is checked in the file (no credentials, no path: those come from bench secrets and from
the backend), so a typo is refused before power-on rather than as an unreachable plug at it.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat, field_validator

from harness.power.base import PowerSection
from harness.transports.http import DEFAULT_TIMEOUT_S, device_url_problem


class HttpDeviceSection(PowerSection):
    url: str = Field(description="the device's address, e.g. http://plug-3.lab (no credentials, no path)")
    invert: bool = False
    timeout_s: PositiveFloat = Field(default=DEFAULT_TIMEOUT_S, le=30,
                                     description="how long a request may take before the device counts as unreachable")

    @field_validator("url")
    @classmethod
    def _device_url(cls, url: str) -> str:
        if (problem := device_url_problem(url)) is not None:
            raise ValueError(problem)
        return url
