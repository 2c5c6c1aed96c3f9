"""Offline analysis of a console capture: the stages seen and the facts found, as one JSON object.

Input is whatever a bench produced: raw bytes with ANSI escapes, CRs and invalid UTF-8, or the
harness's own timestamped `console.log`. Facts that are absent are null, never guessed; with a
board profile, each gate that a passive log can decide is judged by the live gates' own judges.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from harness.config.profile import BoardProfile
from harness.console.cleaner import clean
from harness.console.log import EVENT_PREFIX
from harness.errors import ConfigError
from harness.gates.registry import judge_all
from harness.parsers import ddr_facts, kernel_facts, talos_facts, uboot_facts
from harness.talos.probe import parse_addresses

# Stage markers for a capture of an unknown board (a profile's own markers win when one is given).
GENERIC_STAGE_MARKERS = {
    "ddr": r"^DDR (?:Version )?\S+ ",
    "spl": r"^U-Boot SPL ",
    "u-boot": r"^U-Boot (?!SPL|TPL)\S+ \(.*\)$",
    "kernel": r"Booting Linux on physical CPU|EFI stub: (?:Booting|Decompressing) Linux Kernel",
    "talos-maintenance": r"\[talos\] entering maintenance service",
}
AUTOBOOT_VARIANTS = {
    "mainline": r"Hit any key to stop autoboot:\s*\d",
    "rockchip-vendor": r"Hit key to stop autoboot\('CTRL\+C'\):\s*\d",
    "radxa-vendor": r"Hit Ctrl\+C key in \d+ seconds to stop autoboot",
}
_OUR_LOG_LINE = re.compile(r"^\[\s*\d+\.\d{6}\] ", re.MULTILINE)
_RUN_OPENED = EVENT_PREFIX + "console opened"
_IDX_SUFFIX = ".idx"


def read_runs(path: Path) -> list[str]:
    """Cleaned text of each run a capture holds, oldest first.

    Consoles used to append to their files, so one file can hold several runs, and judging them as
    one boot mixes one run's evidence with another's verdicts. The harness's console.log starts each
    run with a `[hil] console opened` event; a console.raw is cut where its sibling console.raw.idx
    says each run's bytes began. Anything else is one run.
    """
    data = path.read_bytes()
    index = path.with_name(path.name + _IDX_SUFFIX)
    if index.is_file():
        return [clean(part) for part in _split_raw(data, index.read_text(encoding="utf-8", errors="replace"))]
    text = clean(data)
    first = text.split("\n", 1)[0]
    if _OUR_LOG_LINE.match(first) and _RUN_OPENED in first:
        return _split_console_log(text)
    return [text]


def _split_console_log(text: str) -> list[str]:
    """Runs of the harness's console.log, each without its timestamps and `[hil]` events."""
    runs: list[list[str]] = []
    for line in text.split("\n"):
        body = _OUR_LOG_LINE.sub("", line, count=1)
        if body.startswith(_RUN_OPENED) or not runs:
            runs.append([])
        if not body.startswith(EVENT_PREFIX):
            runs[-1].append(body)
    return ["\n".join(lines) for lines in runs]


def _split_raw(data: bytes, index: str) -> list[bytes]:
    """Cut raw bytes at each run's first offset in the index (`# opened ...` starts a run; offsets are absolute)."""
    starts: list[int | None] = []
    for line in index.splitlines():
        if line.startswith("#"):
            starts.append(None)
        elif line.strip() and starts and starts[-1] is None:
            starts[-1] = int(line.split("\t", 1)[0])
    if not starts:
        return [data]
    # A run that received nothing has no offset: it owns no bytes, so it ends where the next run begins.
    bounds: list[int] = []
    following = len(data)
    for start in reversed(starts):
        following = start if start is not None else following
        bounds.append(following)
    bounds.reverse()
    bounds[0] = 0  # bytes before the first recorded offset (an index begun late) belong to the first run
    ends = [*bounds[1:], len(data)]
    return [data[begin:end] for begin, end in zip(bounds, ends, strict=True)]


def read_capture(path: Path, run: int | None = None) -> str:
    """Cleaned text of one run of a capture (1-based `run`; default the last, the run someone just did)."""
    runs = read_runs(path)
    return runs[pick_run(len(runs), run) - 1]


def pick_run(count: int, run: int | None) -> int:
    """The 1-based run to judge: `run`, or the last when None; a run the file does not hold is a ConfigError."""
    if run is None:
        return count
    if not 1 <= run <= count:
        raise ConfigError(f"--run {run}: this capture holds {count} run{'s' if count != 1 else ''} (1..{count})")
    return run


def stages_seen(text: str, profile: BoardProfile | None = None) -> list[str]:
    """Stage names in the order their first marker appears (a reset shows the cycle again)."""
    markers = dict(GENERIC_STAGE_MARKERS)
    if profile is not None:
        markers.update(profile.stage_markers)
    hits = sorted((m.start(), stage) for stage, pattern in markers.items()
                  for m in re.finditer(pattern, text, re.MULTILINE))
    seen: list[str] = []
    for _, stage in hits:
        if not seen or seen[-1] != stage:  # consecutive markers of one stage count once
            seen.append(stage)
    return seen


def autoboot_variant(text: str, profile: BoardProfile | None = None) -> str | None:
    variants = dict(AUTOBOOT_VARIANTS)
    if profile is not None:
        variants.update({a.name: a.pattern for a in profile.uboot.autoboot})
    found = [(m.start(), name) for name, pattern in variants.items()
             if (m := re.search(pattern, text, re.MULTILINE))]
    return min(found)[1] if found else None


def analyze(text: str, profile: BoardProfile | None = None, ram_mb: int | None = None) -> dict[str, Any]:
    ddr, uboot, kernel, talos = ddr_facts(text), uboot_facts(text), kernel_facts(text), talos_facts(text)
    stages = stages_seen(text, profile)
    result: dict[str, Any] = {
        "stages": stages,
        "last_stage": stages[-1] if stages else None,
        "facts": {
            "ddr": {"type": ddr.type, "mhz": ddr.mhz, "size_mb": ddr.size_mb, "blob_version": ddr.blob_version},
            "spl": {"version": uboot.spl_version},
            "uboot": {"version": uboot.version, "model": uboot.model, "dram_gib": uboot.dram_gib,
                      "autoboot": autoboot_variant(text, profile)},
            "kernel": {"version": kernel.version, "model": kernel.model, "cmdline": kernel.cmdline},
            "ethernet": [{"device": e["device"], "link": e["link"], "speed": e["speed"]} for e in kernel.ethernet],
            "mmc": [m["device"] for m in kernel.mmc],
            "usb": [d["id"] for d in kernel.usb],
            "nvme": kernel.nvme,
            "talos": {"version": talos.version, "maintenance": talos.maintenance,
                      "addresses": parse_addresses(text) if talos.maintenance else [],
                      "siderolink_address": talos.siderolink_address, "siderolink_error": talos.siderolink_error},
        },
    }
    if profile is not None:
        result["board"] = profile.name
        result["gates"] = judge_all(text, profile, ram_mb=ram_mb)
    return result


def analyze_capture(path: Path, profile: BoardProfile | None = None, *, ram_mb: int | None = None,
                    run: int | Literal["all"] | None = None) -> list[dict[str, Any]]:
    """Analyse the chosen run of a capture file (default the last; "all" each on its own).

    Each result says how many runs the file holds (`runs`) and which one it judged (`run`, 1-based),
    so nobody takes the verdict on one run for the verdict on the file.
    """
    runs = read_runs(path)
    chosen = range(1, len(runs) + 1) if run == "all" else [pick_run(len(runs), run)]
    return [{"runs": len(runs), "run": index, **analyze(runs[index - 1], profile, ram_mb=ram_mb)} for index in chosen]


def summary(result: dict[str, Any]) -> str:
    """The analysis for a person: one line per fact that was found."""
    lines = []
    if result.get("runs", 1) > 1:
        lines.append(f"runs in this file: {result['runs']} (judging run {result['run']}; --run N for another)")
    lines.append(f"stages: {' -> '.join(result['stages']) or 'none'}")

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif value not in (None, [], False):
            lines.append(f"{prefix}: {value}")

    walk("", result["facts"])
    for gate, verdict in result.get("gates", {}).items():
        lines.append(f"gate {gate}: {verdict}")
    return "\n".join(lines)

