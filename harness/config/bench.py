"""Bench file: how one physical unit is wired at one site.

A board profile is true of every NanoPi M6; a bench is true of the one on this desk: which
serial adapter, which relay channel, how much RAM this SKU has, which environment variables
hold its secrets. `sim` and `qemu` are built-in benches, so no file is needed for them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator, model_validator

from harness.config.power_support import OptionalPowerSection, PowerSection, validate_power_section
from harness.config.profile import Strict
from harness.config.yamlfile import load_model
from harness.errors import ConfigError

BUILT_IN_BENCHES = ("sim", "qemu")
# An Omni join token, as SideroLink's kernel argument carries it (`siderolink.api=...?jointoken=VALUE`).
# The console's masker uses the same key and value characters, so a token is masked alike everywhere.
JOIN_TOKEN_KEY = "jointoken="
JOIN_TOKEN_CHARS = r"[^&\s\"',}]"
_JOIN_TOKEN = re.compile(f"({JOIN_TOKEN_KEY})({JOIN_TOKEN_CHARS}+)")
MASK = "***"


def join_tokens(text: str) -> list[str]:
    """Every join token value in `text`: secrets to mask wherever the bench's kernel arguments may show up."""
    return [m.group(2) for m in _JOIN_TOKEN.finditer(text)]


def mask_join_tokens(text: str) -> str:
    """`text` with each join token value replaced by the mask, the key kept so the argument stays readable."""
    return _JOIN_TOKEN.sub(rf"\g<1>{MASK}", text)


class SerialSpec(Strict):
    """Exactly one of `url` (a pyserial URL or device path) or `udev` (properties to match)."""

    url: str | None = None
    udev: dict[str, str] | None = None
    reappear_timeout_s: PositiveFloat = 10.0

    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> SerialSpec:
        if (self.url is None) == (self.udev is None):
            raise ValueError("give exactly one of 'url' (e.g. /dev/ttyUSB0, rfc2217://host:4001) "
                             "or 'udev' (e.g. {ID_PATH: pci-0000:00:14.0-usb-0:2:1.0})")
        return self


class NetworkSpec(Strict):
    address: str


class SimSpec(Strict):
    """Settings of the built-in virtual board: how fast it runs, what it boots, what goes wrong with it."""

    time_scale: PositiveFloat = Field(default=0.05, description="1.0 is the real board's timing")
    faults: list[str] = Field(default=[], description="names checked where the virtual board is built "
                                                      "(harness/sim/applicability.py), not here: config knows no board")
    image: str | None = Field(default=None, description="SD card image; --image overrides it")
    emmc_image: str | None = Field(default=None, description="eMMC image; default: a synthetic Talos image")
    nvme: bool = False
    kernel_args: list[str] = Field(default=[], description="extra kernel arguments, e.g. SideroLink's")
    drop_fast_keys: bool = Field(default=False, description="lose keys typed with no per-character delay")

    transcript: str | None = Field(default=None, description="transcript file to play instead of the board's own")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """pydantic builds repr(), str() and rich output from this: a traceback must not show a join token."""
        for name, value in super().__repr_args__():
            yield name, [mask_join_tokens(arg) for arg in value] if name == "kernel_args" else value


class QemuSpec(Strict):
    """Settings of the built-in QEMU board."""

    variant: Literal["good", "broken-initramfs"] = "good"
    memory_mb: PositiveInt = 1024


class Bench(Strict):
    name: str
    kind: Literal["hardware", "sim", "qemu"] = "hardware"
    board: str | None = None
    serial: SerialSpec | None = None
    # The registered power kinds' sections (harness.config.power_support): the union is built at
    # validation time from the entry points, so a backend installed by another package is offered too.
    power: OptionalPowerSection = None
    maskrom: OptionalPowerSection = Field(
        default=None, description="the switch across the MaskROM key, held while power is applied")
    network: NetworkSpec | None = None
    ram_mb: PositiveInt | None = Field(default=None, description="this unit's RAM, as DDR init sums it")
    secrets: dict[str, str] = Field(default={}, description="secret name -> environment variable name")
    sim: SimSpec | None = None
    qemu: QemuSpec | None = None

    @field_validator("power", "maskrom", mode="plain")
    @classmethod
    def _registered_kind(cls, value: Any, info: ValidationInfo) -> PowerSection | None:
        """A section of a registered kind that can serve this kind of bench (`kind` is validated first)."""
        if value is None:
            return None
        role = "power" if info.field_name == "power" else "maskrom"
        return validate_power_section(value, role=role, bench_kind=info.data.get("kind"))

    @model_validator(mode="after")
    def _kind_matches_parts(self) -> Bench:
        if self.kind == "hardware" and self.serial is None:
            raise ValueError("a hardware bench needs a 'serial' section saying where its console is")
        if self.kind == "sim" and self.sim is None:
            return self.model_copy(update={"sim": SimSpec()})
        if self.kind == "qemu" and self.qemu is None:
            return self.model_copy(update={"qemu": QemuSpec()})
        return self

    def __repr__(self) -> str:
        """pytest prints gate arguments and locals in failures: name the bench, show nothing secret."""
        return f"<Bench {self.name} ({self.kind})>"

    __str__ = __repr__

    @property
    def is_virtual(self) -> bool:
        return self.kind != "hardware"

    @property
    def timeout_scale(self) -> float:
        """Stage timeouts are the real board's; a virtual board running faster gets proportionally less."""
        return min(1.0, self.sim.time_scale * 2) if self.sim is not None else 1.0

    def secret(self, name: str) -> str:
        """Read a secret from the environment variable the bench names; never from the file."""
        variable = self.secrets.get(name)
        if variable is None:
            raise ConfigError(f"bench '{self.name}' has no secret '{name}': add secrets.{name}: ENV_VAR_NAME")
        value = os.environ.get(variable)
        if not value:
            raise ConfigError(f"secret '{name}' of bench '{self.name}' is not set: export {variable}")
        return value


def builtin_bench(name: str) -> Bench:
    if name == "sim":
        return Bench(name="sim", kind="sim", ram_mb=8192, sim=SimSpec())
    if name == "qemu":
        return Bench(name="qemu", kind="qemu", ram_mb=1024, qemu=QemuSpec())
    raise KeyError(name)


def bench_path(name_or_path: str, directory: Path) -> Path | None:
    """The file `--bench NAME` means (None for a built-in bench): a path as given, else `benches/NAME.yaml`."""
    if name_or_path in BUILT_IN_BENCHES:
        return None
    candidate = Path(name_or_path)
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = directory / f"{name_or_path}.yaml"
    if not candidate.is_file():
        files = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        known = ", ".join([*BUILT_IN_BENCHES, *files])
        raise ConfigError(f"unknown bench '{name_or_path}': no file {candidate}. Known benches: {known}")
    return candidate.resolve()


def load_bench(name_or_path: str, directory: Path) -> Bench:
    """A built-in name, a file in `benches/`, or a path to a bench file."""
    candidate = bench_path(name_or_path, directory)
    if candidate is None:
        return builtin_bench(name_or_path)
    bench = load_model(candidate, Bench, what="bench file")
    if bench.sim is not None:
        # Paths in a bench file are relative to the file, so a bench and its files travel together.
        paths = {key: str((candidate.parent / value).resolve()) for key in ("transcript", "image", "emmc_image")
                 if (value := getattr(bench.sim, key)) is not None}
        bench = bench.model_copy(update={"sim": bench.sim.model_copy(update=paths)})
    return bench
