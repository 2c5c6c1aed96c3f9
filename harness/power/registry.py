"""Build a bench's power switch through the registered backends, never through an `if` on the kind.

The kinds are the `talos_harness.power` entry points, loaded once by harness.config.power_support
(the schema needs their sections before any driver exists); this module reads the same objects for
their factories, so the schema and the rig can never disagree about which kinds exist.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.config.power_support import registered_power_kinds
from harness.errors import ConfigError
from harness.power.base import PowerBackend, PowerContext, PowerSection, PowerSwitch


def power_backends() -> Mapping[str, PowerBackend[PowerSection]]:
    """Every registered backend by kind; a registered object that is not a PowerBackend is refused by name."""
    backends: dict[str, PowerBackend[PowerSection]] = {}
    for kind, registered in registered_power_kinds().items():
        if not isinstance(registered.backend, PowerBackend):
            raise ConfigError(f"power backend {registered.origin} is a {type(registered.backend).__name__}, "
                              "not a harness.power.base.PowerBackend")
        backends[kind] = registered.backend
    return backends


def build_power(section: PowerSection, context: PowerContext) -> PowerSwitch:
    """The switch for a validated bench section, made by the factory its kind registered."""
    backends = power_backends()
    backend = backends.get(section.kind)
    if backend is None or not isinstance(section, backend.section):
        raise ConfigError(f"bench '{context.bench}': power kind '{section.kind}' has no driver in this version; "
                          f"registered kinds: {', '.join(backends) or 'none'}")
    return backend.build(section, context)
