"""Where the harness keeps what it builds once and reuses: the user's cache directory, never the source tree.

`$HIL_CACHE_DIR` if set, else `$XDG_CACHE_HOME/talos-sbc-harness`, else `~/.cache/talos-sbc-harness`. Each
user of the cache takes a subdirectory (`qemu`, `sim`). The source tree may be read-only (an installed
wheel) and the report directory is attached to releases: neither is a place for a 64 MiB image.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ConfigError

PACKAGE = "talos-sbc-harness"
OVERRIDE = "HIL_CACHE_DIR"


def cache_root() -> tuple[Path, str]:
    """The cache directory and the variable that moves it (for error messages)."""
    if os.environ.get(OVERRIDE):
        return Path(os.environ[OVERRIDE]).expanduser(), OVERRIDE
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / PACKAGE, f"{OVERRIDE} (or XDG_CACHE_HOME)"


def cache_dir(name: str) -> Path:
    """`<cache>/<name>`, created; ConfigError naming the directory and the variable when it cannot be."""
    root, variable = cache_root()
    path = root / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"the cache directory {path} cannot be written ({exc.strerror}): set {variable} to a "
                          "directory you can write") from None
    return path
