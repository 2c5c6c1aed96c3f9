"""The virtual board's U-Boot command line: the commands the gates use, in U-Boot's own words.

Answers follow mainline U-Boot's wording (the domain notes' storage table): a gate that parses
these also parses a real board. `$?` is kept like hush keeps it, so exit-status checks are real.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.image.layout import read_blocks
from harness.sim.storage import VirtualMmc

DEFAULT_ENV = {
    "arch": "arm",
    "baudrate": "1500000",
    "bootdelay": "1",
    "boot_targets": "mmc1 mmc0",
    "bootcmd": "bootflow scan -lb",
    "loadaddr": "0x00400000",
    "fdt_addr_r": "0x0a100000",
    "kernel_addr_r": "0x00400000",
    "stdin": "serial",
    "stdout": "serial",
}

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+|\?)")


@dataclass
class UBootShell:
    mmcs: list[VirtualMmc]
    canned: dict[str, list[str]]
    fill: Callable[[str], str]
    on_boot: Callable[[], None]
    on_reset: Callable[[], None]
    env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    status: int = 0
    current: int | None = None

    def run(self, command_line: str) -> str:
        """Run a command line (`;`-separated); returns what U-Boot prints."""
        out: list[str] = []
        for command in (c.strip() for c in command_line.split(";")):
            if command:
                text, self.status = self._command(self._expand(command))
                out.append(text)
        return "".join(out)

    def _expand(self, command: str) -> str:
        def value(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return str(self.status) if name == "?" else self.env.get(name, "")
        return _VARIABLE.sub(value, command)

    def _command(self, command: str) -> tuple[str, int]:
        words = command.split()
        name = words[0]
        canned = self.canned.get(command) or self.canned.get(name)
        if canned is not None:
            return "".join(self.fill(line) + "\n" for line in canned), 0
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None:
            return f"Unknown command '{name}' - try 'help'\n", 1
        return handler(words[1:])

    # -- environment and control ----------------------------------------------------------------
    def _cmd_echo(self, args: list[str]) -> tuple[str, int]:
        return " ".join(args) + "\n", 0

    def _cmd_setenv(self, args: list[str]) -> tuple[str, int]:
        if not args:
            return "setenv - set environment variables\n\nUsage:\nsetenv name value ...\n", 1
        if len(args) == 1:
            self.env.pop(args[0], None)
        else:
            self.env[args[0]] = " ".join(args[1:])
        return "", 0

    def _cmd_printenv(self, args: list[str]) -> tuple[str, int]:
        names = args or sorted(self.env)
        text = "".join(f"{n}={self.env[n]}\n" for n in names if n in self.env)
        missing = [n for n in names if n not in self.env]
        text += "".join(f'## Error: "{n}" not defined\n' for n in missing)
        if not args:
            text += f"\nEnvironment size: {sum(len(k) + len(v) + 2 for k, v in self.env.items())}/32764 bytes\n"
        return text, 1 if missing else 0

    def _cmd_boot(self, args: list[str]) -> tuple[str, int]:
        self.on_boot()
        return "", 0

    _cmd_bootflow = _cmd_boot

    def _cmd_reset(self, args: list[str]) -> tuple[str, int]:
        self.on_reset()
        return "resetting ...\n", 0

    # -- storage -------------------------------------------------------------------------------
    def _mmc(self, index: int) -> VirtualMmc | None:
        return next((m for m in self.mmcs if m.index == index), None)

    def _cmd_mmc(self, args: list[str]) -> tuple[str, int]:
        if not args:
            return "mmc - MMC sub system\n\nUsage:\nmmc info - display info of the current MMC device\n", 1
        sub, rest = args[0], args[1:]
        if sub == "list":
            return "".join(f"{m.controller}: {m.index}" + (f" ({m.label})" if m.has_card else "") + "\n"
                           for m in sorted(self.mmcs, key=lambda m: m.controller)), 0
        if sub == "dev":
            index = int(rest[0]) if rest else (self.current if self.current is not None else 0)
            mmc = self._mmc(index)
            if mmc is None:
                return f"MMC Device {index} not found\nno mmc device at slot {index}\n", 1
            if not mmc.has_card:
                return "Card did not respond to voltage select! : -110\n", 1
            self.current = index
            return f"switch to partitions #0, OK\nmmc{index} is current device\n", 0
        mmc = self._mmc(self.current) if self.current is not None else None
        if mmc is None or not mmc.has_card:
            return "No MMC device available\n", 1
        if sub == "info":
            gib = mmc.sectors * 512 / 2**30
            mode = "HS400 Enhanced Strobe (200MHz)" if mmc.kind == "emmc" else "SD High Speed (50MHz)"
            width = "8-bit DDR" if mmc.kind == "emmc" else "4-bit"
            return (f"Device: {mmc.controller}\nManufacturer ID: 3\nOEM: 5344\nName: {mmc.label}32G\n"
                    f"Bus Speed: 50000000\nMode: {mode}\nRd Block Len: 512\nHigh Capacity: Yes\n"
                    f"Capacity: {gib:.1f} GiB\nBus Width: {width}\nErase Group Size: 512 Bytes\n"), 0
        if sub == "part":
            facts = mmc.facts
            if facts is None or not facts.gpt:
                return "get partition type failed\n", 1
            lines = [f"\nPartition Map for MMC device {mmc.index}  --   Partition Type: EFI\n",
                     "Part\tStart LBA\tEnd LBA\t\tName", "\tAttributes", "\tType GUID", "\tPartition GUID"]
            for p in facts.partitions:
                lines += [f"  {p.number}\t0x{p.first_lba:08x}\t0x{p.last_lba:08x}\t\"{p.name}\"",
                          "\tattrs:\t0x0000000000000000", f"\ttype:\t{p.type_guid}", f"\tguid:\t{p.unique_guid}"]
            return "\n".join(lines) + "\n", 0
        if sub == "read" and len(rest) == 3:
            block, count = int(rest[1], 16), int(rest[2], 16)
            ok = block + count <= mmc.sectors
            if ok and mmc.image is not None:
                ok = len(read_blocks(mmc.image, block, count)) == count * 512
            head = f"\nMMC read: dev # {mmc.index}, block # {block}, count {count} ... "
            return head + (f"{count} blocks read: OK\n" if ok else "0 blocks read: ERROR\n"), 0 if ok else 1
        return f"mmc {sub}: unknown or incomplete subcommand\n", 1
