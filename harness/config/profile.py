"""Board profile: what is true of every unit of one board model, validated on load.

Everything a gate compares against comes from here, so adding a board is writing a YAML file,
not a code branch. Unknown keys are rejected so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from harness.config.yamlfile import load_model
from harness.errors import ConfigError

STAGES: tuple[str, ...] = (
    "off", "ddr", "spl", "u-boot", "kernel", "talos-maintenance", "talos-running", "joined",
)
Stage = Literal["off", "ddr", "spl", "u-boot", "kernel", "talos-maintenance", "talos-running", "joined"]


def stage_index(stage: str) -> int:
    return STAGES.index(stage)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from exc
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsolePort(Strict):
    baud: PositiveInt


class KernelConsole(ConsolePort):
    device: str = Field(pattern=r"^tty\w+$")


class ConsoleSpec(Strict):
    firmware: ConsolePort
    kernel: KernelConsole
    char_delay_ms: float = Field(ge=0, le=1000)

    @property
    def kernel_arg(self) -> str:
        """The `console=` argument the kernel must be given to keep printing on this UART."""
        return f"console={self.kernel.device},{self.kernel.baud}n8"


class DdrSpec(Strict):
    type: Literal["LPDDR5", "LPDDR4X", "LPDDR4", "DDR4"]
    mhz: PositiveInt
    blob: str | None = None


class MmcController(Strict):
    index: int = Field(ge=0)
    controller: str
    kind: Literal["sd", "emmc"]


class Autoboot(Strict):
    name: str
    pattern: Regex


class UBootSpec(Strict):
    banner: Regex
    prompt: str = Field(min_length=1)
    autoboot: list[Autoboot] = Field(min_length=1)
    interrupt: str = Field(min_length=1)
    interrupt_every_ms: PositiveInt = 50
    mmc: list[MmcController] = []
    before_boot: list[str] = Field(
        default=[], description="commands run at the prompt before every `boot` (then the board is always "
                                "booted through the prompt), e.g. to set the device tree's model on QEMU")


class KernelSpec(Strict):
    model: str
    userspace: Regex = Field(description="the line that proves the kernel handed over to userspace")
    mmc_hosts: dict[Literal["sd", "emmc"], str] = Field(
        default={}, description="Linux's name of each MMC host (from the device tree aliases), e.g. emmc: mmc0")


class EthernetSpec(Strict):
    device: str
    link_up_by: Stage | None = Field(
        default=None, description="the stage whose software brings the link up (Talos configures it on its way to "
                                  "maintenance mode): a boot that stops before it blocks KERN-01 instead of failing it")


class ShellCheck(Strict):
    command: str
    expect: Regex
    within_s: PositiveFloat = Field(default=10.0, description="keep asking this long: links and disks come late")


class ShellSpec(Strict):
    """A shell on the console at the kernel stage: gates then ask it instead of reading the kernel log."""

    prompt: str = Field(min_length=1)
    login_user: str | None = Field(default=None, description="log in as this passwordless user if a getty asks")
    evidence: dict[str, ShellCheck] = Field(default={}, description="requirement id -> command and what it prints")


class BadPattern(Strict):
    """A line that must not appear once the board has reached `from_stage`."""

    name: str
    pattern: Regex
    from_stage: Stage = "off"


class SilenceFinding(Strict):
    """A known reason for the console to go quiet right after a given line: reported by name."""

    after: Regex
    finding: str


class BoardProfile(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    soc: str
    loader: Literal["rockchip-idbloader"] | None = Field(
        default=None, description="what the boot ROM looks for on the SD card or eMMC; with none there the board "
                                  "stays silent in MaskROM")
    console: ConsoleSpec
    ddr: DdrSpec | None
    stage_markers: dict[Stage, Regex] = Field(
        description="the first line of each stage; the session records when each arrived")
    uboot: UBootSpec
    kernel: KernelSpec
    ethernet: EthernetSpec | None
    shell: ShellSpec | None = None
    timeouts: dict[Stage, PositiveFloat]
    bad_patterns: list[BadPattern] = []
    silent_after: list[SilenceFinding] = []
    not_applicable: dict[str, str] = Field(
        default={}, description="requirement id -> why this board has no such thing; reported, never passed")

    def timeout(self, stage: str) -> float:
        return self.timeouts.get(stage, 60.0)  # type: ignore[call-overload]

    def __repr__(self) -> str:  # pytest prints gate arguments in failures; the whole profile is noise there
        return f"<BoardProfile {self.name}>"

    def mmc(self, kind: str) -> MmcController | None:
        return next((m for m in self.uboot.mmc if m.kind == kind), None)


def shipped_boards_dir() -> Path:
    """The profiles shipped inside the package (package data; the wheel is not zip-safe, so a real path)."""
    return Path(str(resources.files("harness") / "boards"))


def board_dirs(root: Path | None = None, extra: Path | None = None) -> list[Path]:
    """Where profiles are looked up, first match wins: `--boards-dir`, the project's `boards/`, the shipped ones.

    A user's own profile extends the shipped set, or overrides a shipped one of the same name.
    """
    dirs = [extra] if extra is not None else []
    if root is not None and (root / "boards").is_dir() and (root / "boards").resolve() != shipped_boards_dir():
        dirs.append(root / "boards")
    return [*dirs, shipped_boards_dir()]


def boards_dir(root: Path | None = None) -> Path:
    """The project's own `boards/` when it has one, else the shipped profiles (for listing one directory)."""
    return board_dirs(root)[0]


Directories = Path | Sequence[Path]


def _as_list(directories: Directories) -> list[Path]:
    return [directories] if isinstance(directories, Path) else list(directories)


def known_boards(directories: Directories) -> list[str]:
    return sorted({p.stem for d in _as_list(directories) if d.is_dir() for p in d.glob("*.yaml")})


def profile_path(name_or_path: str, directories: Directories) -> Path:
    """The file `--board NAME` means: a path as given, else `NAME.yaml` in the first directory that has it."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return candidate
    dirs = _as_list(directories)
    for directory in dirs:
        if (directory / f"{name_or_path}.yaml").is_file():
            return directory / f"{name_or_path}.yaml"
    known = ", ".join(known_boards(dirs)) or "none"
    raise ConfigError(
        f"unknown board '{name_or_path}': no {name_or_path}.yaml in {', '.join(map(str, dirs))}. Known boards: "
        f"{known}. Pass one of them to --board, or add {dirs[0]}/{name_or_path}.yaml")


def load_profile(name_or_path: str, directories: Directories) -> BoardProfile:
    """Load `boards/NAME.yaml` (or a path); unknown names list the boards that exist."""
    return load_model(profile_path(name_or_path, directories), BoardProfile, what="board profile")
