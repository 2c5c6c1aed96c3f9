"""Offline analysis of a console capture: the stages seen and the facts found, as one JSON object.

Input is whatever a bench produced: raw bytes with ANSI escapes, CRs and invalid UTF-8, or the
harness's own timestamped `console.log`. Facts that are absent are null, never guessed; with a
board profile, each gate that a passive log can decide is judged by the live gates' own judges.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness import judges
from harness.config.profile import BoardProfile
from harness.console.cleaner import clean
from harness.console.log import EVENT_PREFIX
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


def read_capture(path: Path) -> str:
    """Cleaned text of a capture; the harness's console.log loses its own timestamps and events."""
    text = clean(path.read_bytes())
    first = text.split("\n", 1)[0]
    if _OUR_LOG_LINE.match(first) and EVENT_PREFIX + "console opened" in first:
        lines = [_OUR_LOG_LINE.sub("", line, count=1) for line in text.split("\n")]
        text = "\n".join(line for line in lines if not line.startswith(EVENT_PREFIX))
    return text


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
        result["gates"] = judges.judge_all(text, profile, ram_mb=ram_mb)
    return result


def summary(result: dict[str, Any]) -> str:
    """The analysis for a person: one line per fact that was found."""
    lines = [f"stages: {' -> '.join(result['stages']) or 'none'}"]

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

