"""The bench's power kinds: whatever is registered, found through entry points, decided in one place.

A power backend (harness/power/lcus.py, or a module in a user's own package) declares its bench
section (a `PowerSection` with `kind: Literal["..."]` and its own fields) and a factory, and names
itself in the `talos_harness.power` entry-point group. The bench schema's `power:` and `maskrom:`
are the discriminated union (on `kind`) of exactly those sections, so a bench file can only name a
kind that has a driver, and a new backend needs no edit here.

This is the bottom layer: it must not import the drivers. It loads the registered objects through
importlib.metadata at run time and reads only their `section`; the power layer
(harness.power.registry) reads the same objects for their factories.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args, get_origin

import pydantic
from pydantic import Field, GetJsonSchemaHandler, PositiveFloat, SerializeAsAny
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from harness.config.profile import Strict
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config.bench import Bench

ENTRY_POINT_GROUP = "talos_harness.power"
SUGGESTED_KIND = "lcus"  # the example offered to a bench with no power section: the cheapest common relay
Role = Literal["power", "maskrom"]


class PowerSection(Strict):
    """What every bench power section has; a backend subclasses it with `kind: Literal["<its kind>"]`.

    `bench_kinds` says which benches the switch can serve (QMP switches only the QEMU machine);
    `example` is the section as a one-line flow mapping, quoted when a bench has no power section.
    """

    kind: str
    off_time_s: PositiveFloat = Field(default=2.0, description="least time off in a power cycle (capacitors)")

    bench_kinds: ClassVar[frozenset[str]] = frozenset({"hardware"})
    example: ClassVar[str | None] = None


@dataclass(frozen=True)
class RegisteredKind:
    """One entry point, loaded: the kind it registers, its section, and the object itself (for the factory)."""

    kind: str
    section: type[PowerSection]
    backend: Any
    origin: str  # "name = value (distribution)", for messages about a broken or clashing backend


def kind_of(section: type[PowerSection]) -> str:
    """The one value of a section's `kind: Literal[...]`: the name a bench file uses for it."""
    field = section.model_fields.get("kind")
    values = get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise ConfigError(f"power section {section.__qualname__} must declare kind: Literal['<its kind>'] "
                          f"(one string), got {field.annotation if field else 'no kind field'}")
    return values[0]


def _entry_points() -> Iterable[metadata.EntryPoint]:
    """The group's entry points of every installed distribution (the seam a test replaces)."""
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def _origin(entry: metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    dist_name = dist.name if dist is not None else "unknown distribution"
    return f"'{entry.name} = {entry.value}' ({dist_name})"


def _load(entry: metadata.EntryPoint) -> RegisteredKind:
    origin = _origin(entry)
    try:
        backend = entry.load()
    except Exception as exc:  # a broken plugin must say which one, whatever it raised
        raise ConfigError(f"power backend {origin} in entry-point group {ENTRY_POINT_GROUP} failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
    section = getattr(backend, "section", None)
    if not (isinstance(section, type) and issubclass(section, PowerSection)) or not callable(
            getattr(backend, "build", None)):
        raise ConfigError(f"power backend {origin}: the entry point must name a PowerBackend (from "
                          "harness.power.base): a `section` subclassing PowerSection and a `build` factory")
    kind = kind_of(section)
    if kind != entry.name:
        raise ConfigError(f"power backend {origin}: its section's kind is '{kind}'; the entry point must be "
                          f"named after it ({kind} = {entry.value})")
    return RegisteredKind(kind, section, backend, origin)


@functools.cache
def registered_power_kinds() -> Mapping[str, RegisteredKind]:
    """Every registered power kind by name, sorted; loaded once per process (tests clear the cache).

    Raises ConfigError for a backend that does not load, is not a PowerBackend, or claims a kind
    another distribution already registered: silently picking one would switch the wrong relay.
    """
    kinds: dict[str, RegisteredKind] = {}
    for entry in _entry_points():
        loaded = _load(entry)
        if (other := kinds.get(loaded.kind)) is not None:
            raise ConfigError(f"power kind '{loaded.kind}' is registered twice: by {other.origin} and by "
                              f"{loaded.origin}; uninstall one of them")
        kinds[loaded.kind] = loaded
    return dict(sorted(kinds.items()))


@functools.cache
def _union(sections: tuple[type[PowerSection], ...]) -> pydantic.TypeAdapter[PowerSection]:
    """The discriminated union of the registered sections, built once per set of kinds."""
    members = functools.reduce(operator.or_, sections)  # the members are only known at run time
    return pydantic.TypeAdapter(Annotated[members, Field(discriminator="kind")])


class _RegisteredKindsJsonSchema:
    """JSON schema of a bench power section: the union of the kinds registered when the schema is asked for.

    The field's static type is the common base; without this, an editor reading the exported schema
    would be offered no kinds at all, or (had the kinds been written down here) ones with no driver.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, _schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        sections = tuple(k.section for k in registered_power_kinds().values())
        return handler(core_schema.nullable_schema(_union(sections).core_schema)) if sections else {"type": "null"}


# The type of the bench's optional `power:` and `maskrom:`: validated by `validate_power_section` (the
# bench's field validator), dumped as the section it is (not as the base), described in JSON schema as
# the registered union. The marker sits outside `| None`, where the field validator leaves it in effect.
OptionalPowerSection = Annotated[SerializeAsAny[PowerSection] | None, _RegisteredKindsJsonSchema]


def _listing(kinds: Mapping[str, RegisteredKind], bench_kind: str | None) -> str:
    """'lcus, qmp (qemu benches only)': the registered kinds, each marked where it cannot serve this bench."""
    names = []
    for name, registered in kinds.items():
        serves = registered.section.bench_kinds
        names.append(name if bench_kind is None or bench_kind in serves
                     else f"{name} ({', '.join(sorted(serves))} benches only)")
    return ", ".join(names) or "none (is the talos-sbc-harness package installed? pip install -e .)"


def _error(kind: str, message: str, loc: tuple[str | int, ...], value: Any) -> InitErrorDetails:
    # The message is final text: passing no context keeps pydantic from formatting braces in it.
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def validate_power_section(value: Any, *, role: Role, bench_kind: str | None) -> PowerSection:
    """Validate one bench power section against the registered kinds.

    Errors are re-raised with the section's own locations (the union's tag dropped from them) and
    the kind's errors placed on `kind`, so the YAML loader points at the `power.kind` line and the
    message lists the registered kinds. Called from the bench schema's field validator.
    """
    kinds = registered_power_kinds()
    listing = _listing(kinds, bench_kind)
    if not isinstance(value, Mapping | PowerSection):
        raise pydantic.ValidationError.from_exception_data(role, [_error(
            "power_section_type", f"must be a mapping with a kind and that kind's keys, e.g. {role}: {{kind: ..., "
            f"...}}; registered kinds: {listing}", (), value)])
    tag = value.get("kind") if isinstance(value, Mapping) else value.kind
    if tag is None:
        raise pydantic.ValidationError.from_exception_data(role, [_error(
            "power_kind_missing", f"required key is missing: which switch this is, one of the registered kinds: "
            f"{listing}", ("kind",), value)])
    if not isinstance(tag, str) or tag not in kinds:
        raise pydantic.ValidationError.from_exception_data(role, [_error(
            "power_kind_unknown", f"{role} kind '{tag}' has no driver in this version; registered kinds: {listing}",
            ("kind",), tag)])
    try:
        section = _union(tuple(k.section for k in kinds.values())).validate_python(value)
    except pydantic.ValidationError as exc:
        errors = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            loc = loc[1:] if loc[:1] == (tag,) else loc
            errors.append(_error(error["type"], error["msg"], loc, error["input"]))
        raise pydantic.ValidationError.from_exception_data(role, errors) from None
    serves = type(section).bench_kinds
    if bench_kind is not None and bench_kind not in serves:
        raise pydantic.ValidationError.from_exception_data(role, [_error(
            "power_kind_elsewhere", f"{role} kind '{tag}' switches {', '.join(sorted(serves))} benches only, not a "
            f"{bench_kind} bench; registered kinds: {listing}", ("kind",), tag)])
    return section


def power_driver_problem(bench: Bench) -> str | None:
    """Why this bench's board cannot be switched on, or None when it can: asked before any power-on.

    The schema already refuses a kind without a driver; what is left is a hardware bench that names
    no switch at all. Virtual benches switch their board themselves, so only hardware is judged.
    """
    if bench.kind != "hardware" or bench.power is not None:
        return None
    kinds = {name: k for name, k in registered_power_kinds().items() if "hardware" in k.section.bench_kinds}
    if not kinds:
        return (f"bench '{bench.name}' has no power section, and no power kind is registered for hardware "
                "benches: install a power backend")
    first = kinds.get(SUGGESTED_KIND) or next((k for k in kinds.values() if k.section.example),
                                              next(iter(kinds.values())))
    example = first.section.example or f"{{kind: {first.kind}, ...}}"
    return (f"bench '{bench.name}' has no power section: the harness cannot switch the board; add one, e.g. "
            f"power: {example} (kinds: {', '.join(kinds)})")
