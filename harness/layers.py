"""The layer order, declared once: a module imports only from its own layer or the layers below it.

tests/test_layers.py reads every module's imports and fails, naming the file and line, on any that
runs up this order. Top to bottom:
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pytest plugin and CLI", ("harness.pytest", "harness.cli", "harness.cli_power", "harness.cli_doctor",
                               "harness.cli_console", "harness.analysis")),
    ("gates", ("harness.gates",)),
    ("bring-up", ("harness.rig", "harness.session", "harness.bringup")),
    ("drivers", ("harness.console", "harness.power", "harness.uboot", "harness.shell", "harness.runner",
                 "harness.talos", "harness.flash")),
    # The far side of a transport: a virtual board, a QEMU machine. Drivers never import them; the rig does.
    ("boards behind transports", ("harness.sim", "harness.qemu")),
    ("transports", ("harness.transports",)),
    ("config, parsers, errors, steps", ("harness.config", "harness.errors", "harness.parsers", "harness.judges",
                                        "harness.command", "harness.steps", "harness.deadline", "harness.cache",
                                        "harness.image", "harness.layers")),
)


def layer_of(module: str) -> int | None:
    """Index of `module`'s layer (0 is the top), by the longest declared prefix; None if undeclared."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0] if best else None
