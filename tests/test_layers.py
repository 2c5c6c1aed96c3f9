"""Imports point downward only: every module of the package is read, and an upward import fails the
test naming its file and line. The checker proves it can fail on a synthetic offender."""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

from harness.layers import LAYERS, layer_of

PACKAGE = ROOT / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(module imported, line) for every harness import, static ones anywhere in the file included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found += [(f"{target}.{alias.name}" if _is_submodule(target, alias.name) else target, node.lineno)
                      for alias in node.names]
    return [(name, line) for name, line in found if name == "harness" or name.startswith("harness.")]


def _is_submodule(package: str, name: str) -> bool:
    path = ROOT.joinpath(*package.split("."), name)
    return path.is_dir() or path.with_suffix(".py").is_file()


def upward_imports(source: str, module: str, filename: str, is_package: bool = False) -> list[str]:
    """Each import in `source` that runs up the layer order, as 'file:line: a imports b (layer x above y)'."""
    own = layer_of(module)
    problems = []
    for target, line in imported_modules(ast.parse(source), module, is_package):
        theirs = layer_of(target)
        if target == "harness":
            continue  # `from harness import x` resolves to harness.x above
        if own is None or theirs is None:
            problems.append(f"{filename}:{line}: {module} or {target} is in no layer of harness/layers.py")
        elif theirs < own:
            problems.append(f"{filename}:{line}: {module} ({LAYERS[own][0]}) imports {target}, which is in the "
                            f"layer above it ({LAYERS[theirs][0]})")
    return problems


def test_no_module_imports_up_the_layer_order() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        problems += upward_imports(path.read_text(), module, str(path.relative_to(ROOT)), path.name == "__init__.py")
    assert not problems, "\n".join(problems)


def test_the_check_fails_on_an_upward_import() -> None:
    offender = "from harness.config.profile import BoardProfile\nfrom harness.session import BringUpSession\n"
    problems = upward_imports(offender, "harness.console.fake", "harness/console/fake.py")
    assert problems == ["harness/console/fake.py:2: harness.console.fake (drivers) imports harness.session, which "
                        "is in the layer above it (bring-up)"]


def test_config_imports_nothing_of_the_virtual_board() -> None:
    for path in sorted((PACKAGE / "config").rglob("*.py")):
        imports = [name for name, _ in imported_modules(ast.parse(path.read_text()), module_name(path), False)]
        assert not [name for name in imports if name.startswith("harness.sim")], path


def test_every_module_is_in_a_layer() -> None:
    assert all(layer_of(module_name(p)) is not None for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"), [
        module_name(p) for p in PACKAGE.rglob("*.py") if layer_of(module_name(p)) is None]
