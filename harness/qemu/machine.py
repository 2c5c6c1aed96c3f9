"""The QEMU board: a `virt` arm64 machine running Debian's U-Boot and a Debian kernel.

QEMU starts paused (`-S`) with its console on a TCP socket the console engine opens as
`socket://`; power-on is QMP `cont` once the console is attached, so no byte is lost (with
`wait=off`, QEMU drops what it prints while no client is connected). Power-off freezes the
machine (`stop`); the next power-on resets it first, so each power-on is a fresh boot.

QEMU is a child the harness owns (harness.transports.children): it dies with the harness, even
on SIGKILL, and close() ends its whole process group.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path

from harness.errors import BenchError
from harness.qemu.assets import QemuAssets, qemu_binary
from harness.qemu.qmp import Qmp
from harness.transports.children import OwnedChild, start_child

QUIT_GRACE = 5.0  # seconds QEMU gets to exit on QMP `quit` before it is signalled


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class QemuMachine:
    def __init__(self, assets: QemuAssets, workdir: Path, *, memory_mb: int = 1024, cpus: int = 2) -> None:
        self.assets = assets
        self.workdir = workdir
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.port = free_port()
        self.qmp_path = workdir / "qmp.sock"
        self._child: OwnedChild | None = None
        self.qmp: Qmp | None = None

    @property
    def pid(self) -> int | None:
        """QEMU's process id while it runs (it also leads its own process group)."""
        return self._child.pid if self._child is not None else None

    @property
    def console_url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        a = self.assets
        return [
            str(qemu_binary()), "-M", "virt,acpi=off", "-cpu", "cortex-a72", "-m", str(self.memory_mb),
            "-smp", str(self.cpus), "-bios", str(a.firmware), "-display", "none", "-monitor", "none",
            "-S", "-no-shutdown", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-chardev", f"socket,id=s0,host=127.0.0.1,port={self.port},server=on,wait=off",
            "-serial", "chardev:s0",
            "-drive", f"if=none,id=boot,file={a.boot_disk},format=raw,snapshot=on",
            "-device", "virtio-blk-device,drive=boot",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
            "-device", "qemu-xhci,id=xhci", "-device", "usb-kbd,bus=xhci.0",
            "-drive", f"if=none,id=usbdisk,file={a.usb_disk},format=raw,snapshot=on",
            "-device", "usb-storage,bus=xhci.0,drive=usbdisk",
            # The drive id sd0 is reserved by QEMU and aborts it; the card size must be a power of two.
            "-device", "sdhci-pci", "-drive", f"if=none,id=sdcard,file={a.sd_card},format=raw,snapshot=on",
            "-device", "sd-card,drive=sdcard",
        ]

    def start(self) -> QemuMachine:
        """Start QEMU paused; must run on the main thread (see harness.transports.children)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.qmp_path.unlink(missing_ok=True)
        with (self.workdir / "qemu.log").open("wb") as log:
            self._child = start_child(self.command(), name="qemu-system-aarch64", stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT)
        try:
            self.qmp = Qmp(self.qmp_path)
        except BenchError as exc:
            code = self._child.poll()
            output = (self.workdir / "qemu.log").read_text(errors="replace").strip()
            self.close()
            raise BenchError(f"QEMU did not start (exit {code}): {output or exc}") from exc
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Quit QEMU politely over QMP, then end its process group (SIGTERM, `timeout` s, SIGKILL)."""
        quit_sent = False
        if self.qmp is not None:
            with contextlib.suppress(BenchError):
                self.qmp.execute("quit")
                quit_sent = True
            self.qmp.close()
            self.qmp = None
        if self._child is not None:
            if quit_sent:
                self._child.wait(QUIT_GRACE)
            self._child.stop(timeout)
            self._child = None

