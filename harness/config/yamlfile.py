"""Load a YAML file into a pydantic model with errors that name the file, the line and the key.

pydantic knows which key is wrong but not where it is; PyYAML's node tree knows where every key
is. Loading both lets a message read `boards/x.yaml:12: key 'ddr.mhz': expected an integer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from harness.errors import ConfigError

Model = TypeVar("Model", bound=pydantic.BaseModel)


def _node_line(root: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """Walk the composed node tree along `path`; return the 1-based line of the deepest node found."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
            if match is None:
                break
            line = (key or match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (not in the schema); remove it or check its spelling"
    if kind == "missing":
        return "required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return message[0].lower() + message[1:]


def read_yaml(path: Path, *, what: str) -> tuple[yaml.Node | None, Any]:
    """Read and parse `path`: the node tree (for line numbers) and the data, which may be None (an empty file).

    Split from validation so `hil check` can look at the keys and decide what kind of file it is
    before choosing the schema to validate against.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc}") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}; fix the syntax of this {what}") from exc


def expected_keys(model: type[pydantic.BaseModel]) -> str:
    """The top-level keys a model takes, required ones first: what an empty file should have held."""
    fields = model.model_fields
    required = [name for name, info in fields.items() if info.is_required()]
    optional = [name for name, info in fields.items() if not info.is_required()]
    text = f"the keys {', '.join(required)}" if required else "keys"
    return text + (f" (and optionally {', '.join(optional)})" if optional else "")


def require_mapping(path: Path, data: Any, *, what: str, contents: str) -> dict[str, Any]:
    """`data` as a mapping, or a ConfigError saying what the file should have held.

    An empty (or comments-only) file parses to None; saying "got NoneType" sends people looking
    for a type error when the truth is that nothing was written (a failed copy, a save gone wrong).
    """
    if data is None:
        raise ConfigError(f"{path}: the file is empty; {contents}")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a {what} must be a YAML mapping of keys, got {type(data).__name__}; {contents}")
    return data


def validate(path: Path, root: yaml.Node | None, data: dict[str, Any], model: type[Model], *, what: str) -> Model:
    """Validate parsed data; raise ConfigError with every problem, each with its line."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = ".".join(str(p) for p in loc) or "(top level)"
            line = _node_line(root, loc)
            expected = _describe(error)
            lines.append(f"{path}:{line}: key '{key}': {expected}")
        raise ConfigError(f"invalid {what} {path}:\n  " + "\n  ".join(lines)) from exc


def load_model(path: Path, model: type[Model], *, what: str) -> Model:
    """Parse and validate `path`; raise ConfigError with every problem, each with its line."""
    root, data = read_yaml(path, what=what)
    mapping = require_mapping(path, data, what=what, contents=f"a {what} is a YAML mapping with {expected_keys(model)}")
    return validate(path, root, mapping, model, what=what)
