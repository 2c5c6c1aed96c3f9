"""The QEMU board's assets: Debian's kernel, busybox and lsusb on a disk U-Boot's distro boot finds.

The first run fetches about 63 MB from the Debian mirror into the user's cache directory (harness/cache.py) (the
same cache the harness uses, so CI builds once); later runs are cache hits. The disk and the
initramfs are read back with mtools and a cpio reader written here, not with the builder's code.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from harness.cache import cache_dir
from harness.errors import ConfigError
from harness.qemu import assets as assets_module
from harness.qemu.assets import QemuAssets, build_assets, firmware_path, main, qemu_binary

CACHE = cache_dir("qemu")
APPEND = "console=ttyAMA0,115200 rdinit=/init"
# The brief's driver list, spelled as Debian names the files; mmc_block is built into Debian's kernel.
MODULES = ("virtio_mmio", "virtio_blk", "virtio_net", "virtio_pci", "sdhci", "sdhci-pci", "mmc_block",
           "xhci-pci", "xhci-hcd", "usb-storage", "usbhid", "hid-generic", "vfat", "sd_mod", "gpio_keys", "evdev")
LSUSB_LIBRARIES = ("libusb-1.0.so.0", "libudev.so.1", "libc.so.6", "libgcc_s.so.1")
EM_AARCH64 = 183


@pytest.fixture(scope="module")
def built() -> tuple[QemuAssets, list[str]]:
    lines: list[str] = []
    return build_assets(CACHE, log=lines.append), lines


@pytest.fixture(scope="module")
def good(built: tuple[QemuAssets, list[str]]) -> QemuAssets:
    return built[0]


@pytest.fixture(scope="module")
def broken() -> QemuAssets:
    return build_assets(CACHE, variant="broken-initramfs", log=lambda _line: None)


@pytest.fixture(scope="module")
def initramfs(good: QemuAssets) -> dict[str, tuple[int, bytes]]:
    return _initramfs_of(good)


# --- reading the results back ---------------------------------------------------------------------


def _partition_start(disk: Path) -> int:
    """Byte offset of the first MBR partition, read from the disk rather than assumed."""
    with disk.open("rb") as handle:
        mbr = handle.read(512)
    assert mbr[510:512] == b"\x55\xaa", "no DOS partition table on the boot disk"
    (first_lba,) = struct.unpack_from("<I", mbr, 446 + 8)
    return first_lba * 512


def _mtools(tool: str, disk: Path, *args: str) -> bytes:
    done = subprocess.run([tool, "-i", f"{disk}@@{_partition_start(disk)}", *args], capture_output=True,
                          check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return done.stdout


def _read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, body) of a newc archive."""
    entries: dict[str, tuple[int, bytes]] = {}
    at = 0
    while True:
        assert data[at:at + 6] == b"070701", f"bad cpio magic at {at}"
        fields = [int(data[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[at + 110:at + 110 + namesize - 1].decode()
        at += 110 + namesize
        at += -at % 4
        body = data[at:at + size]
        at += size + (-size % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body)


def _initramfs_of(assets: QemuAssets) -> dict[str, tuple[int, bytes]]:
    return _read_cpio(gzip.decompress(_mtools("mcopy", assets.boot_disk, "::initramfs.cpio.gz", "-")))


def _lookup(entries: dict[str, tuple[int, bytes]], path: str, depth: int = 0) -> str:
    """Follow symlinks component by component, as the kernel would; KeyError when something dangles."""
    assert depth < 20, f"symlink loop at {path}"
    current = ""
    for part in path.split("/"):
        current = posixpath.join(current, part) if current else part
        mode, body = entries[current]
        if stat.S_ISLNK(mode):
            target = body.decode()
            base = "" if target.startswith("/") else posixpath.dirname(current)
            current = _lookup(entries, posixpath.normpath(posixpath.join(base, target.lstrip("/"))), depth + 1)
    return current


def _regular(entries: dict[str, tuple[int, bytes]], path: str) -> bytes:
    mode, body = entries[_lookup(entries, path)]
    assert stat.S_ISREG(mode), f"{path} is not a regular file"
    return body


def _modules_dir(entries: dict[str, tuple[int, bytes]], version: str) -> str:
    directory = f"lib/modules/{version}"
    assert f"{directory}/modules.dep" in entries
    return directory


# --- tests ----------------------------------------------------------------------------------------


def test_build_yields_every_file(good: QemuAssets) -> None:
    for path in (good.firmware, good.boot_disk, good.sd_card, good.usb_disk):
        assert path.is_file(), path
    assert good.firmware == firmware_path()
    assert good.kernel_version.endswith("-arm64")
    assert good.cache_key.startswith("good-")
    assert good.boot_disk.parent.name == good.cache_key
    assert good.boot_disk.parent.parent == CACHE


def test_boot_disk_is_a_bootable_fat_partition(good: QemuAssets) -> None:
    with good.boot_disk.open("rb") as handle:
        entry = handle.read(512)[446:462]
    assert entry[0] == 0x80, "partition not marked active"
    assert entry[4] in (0x04, 0x06, 0x0B, 0x0C, 0x0E), f"partition type {entry[4]:#x} is not FAT"
    listing = _mtools("mdir", good.boot_disk, "-/", "-b", "::").decode().lower().split()
    assert {"::/image", "::/initramfs.cpio.gz", "::/extlinux/extlinux.conf"} <= set(listing)
    head = _mtools("mcopy", good.boot_disk, "::Image", "-")[:64]
    assert head[56:60] == b"ARM\x64", "Image on the disk is not an uncompressed arm64 Image for booti"


def test_extlinux_boots_the_initramfs_on_the_serial_console(good: QemuAssets) -> None:
    text = _mtools("mtype", good.boot_disk, "::extlinux/extlinux.conf").decode()
    lines = [line.strip() for line in text.splitlines()]
    default = next(line.split()[1] for line in lines if line.startswith("default "))
    assert f"label {default}" in lines
    assert "kernel /Image" in lines
    assert "initrd /initramfs.cpio.gz" in lines
    assert f"append {APPEND}" in lines
    assert "quiet" not in text  # the kernel gates read the early log


def test_initramfs_has_an_init_that_hands_the_console_to_a_shell(initramfs: dict[str, tuple[int, bytes]]) -> None:
    mode, init = initramfs["init"]
    assert stat.S_ISREG(mode) and mode & 0o111
    script = init.decode()
    assert script.startswith("#!/bin/sh\n")
    for mount in ("-t proc", "-t sysfs", "-t devtmpfs"):
        assert mount in script
    assert script.index("modprobe") < script.index("echo 1 > /proc/sys/kernel/printk"), "printk quietened too early"
    assert "ip link set eth0 up" in script
    assert _regular(initramfs, "bin/sh")[:4] == b"\x7fELF"
    assert _lookup(initramfs, "sbin/init") == "bin/busybox"
    assert "cttyhack" in initramfs["etc/inittab"][1].decode()
    profile = initramfs["etc/profile"][1].decode()
    assert "PS1='hil# '" in profile
    assert "cols 1000" in profile
    assert "echo HIL-SHELL-READY" in profile
    assert stat.S_ISCHR(initramfs["dev/console"][0])


def test_initramfs_busybox_is_the_arm64_binary_with_applets(initramfs: dict[str, tuple[int, bytes]]) -> None:
    mode, busybox = initramfs["bin/busybox"]
    assert stat.S_ISREG(mode)
    assert busybox[:4] == b"\x7fELF" and struct.unpack_from("<H", busybox, 18)[0] == EM_AARCH64
    for applet in ("sh", "mount", "modprobe", "ip", "udhcpc", "stty", "setsid", "cttyhack", "poweroff", "acpid"):
        assert _lookup(initramfs, f"bin/{applet}") == "bin/busybox", applet


def test_initramfs_has_lsusb_with_its_loader_and_libraries(initramfs: dict[str, tuple[int, bytes]]) -> None:
    lsusb = _regular(initramfs, "usr/bin/lsusb")
    assert struct.unpack_from("<H", lsusb, 18)[0] == EM_AARCH64
    assert b"/lib/ld-linux-aarch64.so.1\0" in lsusb
    assert _regular(initramfs, "lib/ld-linux-aarch64.so.1")[:4] == b"\x7fELF"
    files = set(initramfs)
    for library in LSUSB_LIBRARIES:
        where = [name for name in files if posixpath.basename(name) == library]
        assert where, f"{library} missing"
        assert _regular(initramfs, where[0])[:4] == b"\x7fELF"


def test_initramfs_has_the_drivers_and_their_dependencies(good: QemuAssets,
                                                          initramfs: dict[str, tuple[int, bytes]]) -> None:
    directory = _modules_dir(initramfs, good.kernel_version)
    dep = initramfs[f"{directory}/modules.dep"][1].decode()
    builtin = initramfs[f"{directory}/modules.builtin"][1].decode().split()
    shipped = {posixpath.basename(name).removesuffix(".ko"): name for name in initramfs if name.endswith(".ko")}
    for module in MODULES:
        in_kernel = any(posixpath.basename(path) == f"{module}.ko" for path in builtin)
        assert module in shipped or in_kernel, f"{module} neither shipped nor built in"
    for line in dep.splitlines():
        module, _, needs = line.partition(":")
        for path in (module, *needs.split()):
            assert f"{directory}/{path}" in initramfs, f"modules.dep names {path}, which is not in the archive"
    script = initramfs["init"][1].decode()
    for module in ("virtio_mmio", "virtio_blk", "xhci_pci", "usb_storage", "sdhci_pci"):
        assert module in script, f"/init does not load {module}"


def test_broken_variant_has_no_working_init(good: QemuAssets, broken: QemuAssets) -> None:
    assert broken.cache_key != good.cache_key
    assert broken.kernel_version == good.kernel_version
    entries = _initramfs_of(broken)
    assert "init" in entries  # the kernel tries it, fails to exec it and panics: "No working init found"
    assert entries["init"][1].startswith(b"#!/bin/sh\n")
    for fallback in ("bin/sh", "sbin/init", "etc/init", "bin/init"):  # the interpreter, then the kernel's list
        with pytest.raises(KeyError):
            _lookup(entries, fallback)
    text = _mtools("mtype", broken.boot_disk, "::extlinux/extlinux.conf").decode()
    assert f"append {APPEND}" in text


def test_sd_card_is_a_power_of_two_and_usb_disk_is_small(good: QemuAssets) -> None:
    size = good.sd_card.stat().st_size
    assert size >= 1024 * 1024 and size & (size - 1) == 0
    assert 0 < good.usb_disk.stat().st_size <= 256 * 1024 * 1024


def test_second_call_is_a_cache_hit(good: QemuAssets) -> None:
    lines: list[str] = []
    again = build_assets(CACHE, log=lines.append)
    assert again == good
    assert any(line.startswith("cache hit") for line in lines), lines
    assert not [line for line in lines if line.startswith(("update", "download", "unpack"))], lines


def test_unfinished_entry_is_rebuilt_from_cached_packages(good: QemuAssets, tmp_path: Path) -> None:
    """An entry without its completion marker is an interrupted build, whatever files it holds."""
    shutil.copytree(CACHE / "apt", tmp_path / "apt")  # copies keep mtimes, so the lists still match
    shutil.copytree(good.boot_disk.parent, tmp_path / good.cache_key, ignore=shutil.ignore_patterns("*.json"))
    lines: list[str] = []
    rebuilt = build_assets(tmp_path, log=lines.append)
    assert rebuilt.cache_key == good.cache_key
    assert any(line.startswith("unpack") for line in lines), lines
    assert not [line for line in lines if line.startswith(("update", "download", "cache hit"))], lines
    assert [path.suffix for path in rebuilt.boot_disk.parent.iterdir()].count(".json") == 1
    assert build_assets(tmp_path, log=lines.append) == rebuilt
    assert lines[-1].startswith("cache hit")


def test_missing_host_tools_name_their_debian_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ConfigError) as error:
        build_assets(tmp_path / "cache", log=lambda _line: None)
    message = str(error.value)
    assert "mcopy (Debian package mtools)" in message
    assert "apt-get install --no-install-recommends" in message
    assert "mtools" in message.rsplit("apt-get install", 1)[1]
    assert not (tmp_path / "cache" / "apt" / "lists").exists(), "fetched lists before checking tools"


def test_missing_emulator_and_firmware_name_their_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert qemu_binary().name == "qemu-system-aarch64"
    monkeypatch.setattr(assets_module, "FIRMWARE", tmp_path / "u-boot.bin")
    with pytest.raises(ConfigError, match="u-boot-qemu"):
        firmware_path()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="qemu-system-arm"):
        qemu_binary()


def test_unknown_variant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="broken-initramfs"):
        build_assets(CACHE, variant="nope", log=lambda _line: None)


def test_main_prints_the_paths(good: QemuAssets, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache", str(CACHE)]) == 0
    out = capsys.readouterr().out
    assert f"boot_disk: {good.boot_disk}" in out
    assert f"kernel_version: {good.kernel_version}" in out

