"""Boot assets for the QEMU arm64 board, made only of Debian's own arm64 packages.

The board exists to put the harness in front of firmware and a kernel nobody here wrote, so
nothing is compiled: the kernel, busybox, lsusb and its libraries are Debian's arm64 packages,
fetched through a private arm64-only apt view (the host's package state neither helps nor
interferes) and unpacked without installing. From them this builds a busybox initramfs and a
small partitioned FAT disk that U-Boot's distro boot finds through extlinux, plus blank disks for
the SD card and USB stick. Everything lands under one cache directory keyed by the package
versions, the recipe and the variant; a complete entry is reused without touching the network,
so CI builds once. Run `python -m harness.qemu.assets --cache DIR` to build by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import json
import math
import os
import posixpath
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_dir
from harness.errors import BenchError, ConfigError, HarnessError

RECIPE_VERSION = 2  # bump when the output changes in a way the templates below do not show
VARIANTS = ("good", "broken-initramfs")
FIRMWARE = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
KERNEL_APPEND = "console=ttyAMA0,115200 rdinit=/init"  # no `quiet`: the kernel gates read the early log
SHELL_READY = "HIL-SHELL-READY"
PROMPT = "hil# "

# The guest is pinned to one Debian release so a newer host does not silently change the board.
DEBIAN_SOURCES = (
    ("http://deb.debian.org/debian", "bookworm"),
    ("http://deb.debian.org/debian", "bookworm-updates"),
    ("http://deb.debian.org/debian-security", "bookworm-security"),
)
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
KERNEL_META = "linux-image-arm64"  # depends on the current ABI's concrete linux-image-<ver>-arm64
USERSPACE_PACKAGES = ("busybox-static", "usbutils", "libusb-1.0-0", "libudev1", "libc6", "libgcc-s1")
# The virt machine's drivers that Debian builds as modules, in load order; built-in ones are skipped.
MODULES = (
    "virtio_mmio", "virtio_blk", "virtio_net", "virtio_pci",
    "sdhci", "sdhci_pci", "mmc_block",
    "xhci_hcd", "xhci_pci", "usb_storage", "sd_mod", "usbhid", "hid_generic",
    "evdev", "gpio_keys",  # QEMU's system_powerdown is a gpio-keys KEY_POWER press with acpi=off
    "vfat", "nls_cp437", "nls_ascii",  # FAT's default codepage and iocharset in Debian's config
)
# glibc dlopens libgcc_s for thread cancellation and unwinding, so no NEEDED entry names it.
EXTRA_LIBRARIES = ("libgcc_s.so.1",)
SD_CARD_BYTES = 64 * 1024 * 1024  # QEMU's sd-card refuses sizes that are not a power of two
USB_DISK_BYTES = 16 * 1024 * 1024

BOOT_DISK = "boot.img"
SD_CARD = "sd.img"
USB_DISK = "usb.img"
_MARKER = "complete.json"  # written last: an entry without it is an interrupted build
_MIB = 1024 * 1024
_SECTOR = 512
_PARTITION_LBA = 2048  # 1 MiB, where partitioning tools put the first partition
_LIBRARY_DIRS = ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib")
_SBIN_DIRS = ("/usr/sbin", "/sbin")  # depmod and mkfs.vfat live there, outside a normal user's PATH
_APT_TOOLS = {"apt-get": "apt", "apt-cache": "apt"}
_BUILD_TOOLS = {"dpkg-deb": "dpkg", "depmod": "kmod", "mkfs.vfat": "dosfstools",
                "mmd": "mtools", "mcopy": "mtools", "mdir": "mtools"}

_INIT = """\
#!/bin/sh
# PID 1 of the HIL QEMU board (written by harness.qemu.assets). It brings the virt machine's
# devices up, then hands over to busybox init, which keeps a shell on the console, respawns it
# and turns `poweroff`/`reboot` (and QEMU's system_powerdown, via acpid) into real power-offs.
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for module in @MODULES@; do
    modprobe "$module" || echo "hil-init: modprobe $module failed"
done
# From here on only emergencies reach the console: late driver messages would split shell lines.
echo 1 > /proc/sys/kernel/printk
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 2 -T 1 >/dev/null 2>&1 &
acpid -l /dev/null
exec /sbin/init
"""

_INITTAB = """\
# Written by harness.qemu.assets: /init already set the machine up; busybox init only keeps a
# job-control shell on the console (cttyhack finds the real tty behind /dev/console).
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/reboot
::shutdown:/bin/sync
"""

_PROFILE = f"""\
# Written by harness.qemu.assets for the console shell the harness drives.
export PATH=/bin:/usr/bin
export PS1='{PROMPT}'
# ash re-wraps input longer than the tty's width (80 on a serial line) with escape sequences;
# rows too, or stty and friends treat the size as unknown.
stty rows 50 cols 1000 2>/dev/null
echo {SHELL_READY}
"""

_POWER_BUTTON = """\
#!/bin/sh
# busybox acpid runs this on KEY_POWER (QEMU system_powerdown): shut down the way a board would.
poweroff
"""

_UDHCPC_SCRIPT = """\
#!/bin/sh
# busybox udhcpc's hook (written by harness.qemu.assets): apply a lease to the interface.
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        [ -n "$dns" ] && for server in $dns; do echo "nameserver $server"; done > /etc/resolv.conf
        ;;
esac
exit 0
"""

_EXTLINUX = f"""\
# Written by harness.qemu.assets; U-Boot's distro boot reads it from the first FAT partition.
default hil
label hil
    kernel /Image
    initrd /initramfs.cpio.gz
    append {KERNEL_APPEND}
"""


@dataclass(frozen=True)
class QemuAssets:
    """Everything `qemu-system-aarch64` needs for one variant of the board."""

    firmware: Path
    boot_disk: Path
    sd_card: Path
    usb_disk: Path
    kernel_version: str
    cache_key: str


@dataclass(frozen=True)
class _Resolution:
    """Which concrete packages the cached apt lists name: the inputs of a cache key."""

    kernel_version: str
    packages: Mapping[str, str]  # name -> version, the kernel package first


@dataclass(frozen=True)
class _Node:
    """One initramfs entry; built in memory so no root, mknod or staging tree is needed."""

    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def firmware_path() -> Path:
    """Debian's U-Boot for QEMU arm64: real firmware is the point, so there is no fallback."""
    if FIRMWARE.is_file():
        return FIRMWARE
    raise ConfigError(f"U-Boot for the QEMU arm64 board is missing ({FIRMWARE}); it comes from the Debian "
                      "package u-boot-qemu: apt-get install --no-install-recommends u-boot-qemu")


def qemu_binary() -> Path:
    """The emulator, found where a user's shell would find it."""
    found = shutil.which("qemu-system-aarch64")
    if found:
        return Path(found)
    raise ConfigError("qemu-system-aarch64 is not in PATH; it comes from the Debian package qemu-system-arm: "
                      "apt-get install --no-install-recommends qemu-system-arm")


def build_assets(cache_dir: Path, *, variant: str = "good", log: Callable[[str], None] = print) -> QemuAssets:
    """Return the cached assets for `variant`, building them first when the cache has none.

    A hit needs neither network nor apt: the package versions that key the cache are resolved
    from the apt lists of the first run. Lists are only fetched when missing, or once when a
    download fails because Debian dropped the versions they name.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown QEMU board variant {variant!r}; known: {', '.join(VARIANTS)}")
    firmware = firmware_path()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_dir / ".lock"):
        apt = _AptView(cache_dir / "apt", log)
        while True:
            if not apt.has_resolution():
                # A build is certain: fail on a missing tool before fetching anything.
                _require_tools({**_APT_TOOLS, **_BUILD_TOOLS})
            resolution = apt.resolve()
            entry = cache_dir / _cache_key(resolution, variant)
            if (entry / _MARKER).is_file():
                log(f"cache hit: {entry}")
                return _assets(firmware, entry, resolution)
            tools = _require_tools(_BUILD_TOOLS)
            try:
                debs = apt.download(resolution)
                break
            except BenchError as failure:
                if apt.refreshed:
                    raise
                log("download: failed with package lists from an earlier run; refreshing them once")
                try:
                    apt.update()
                except BenchError as refresh_failure:
                    raise failure from refresh_failure  # the download is what the user asked for
        _build_entry(entry, debs, resolution, variant, tools, log)
        return _assets(firmware, entry, resolution)


def _assets(firmware: Path, entry: Path, resolution: _Resolution) -> QemuAssets:
    return QemuAssets(firmware=firmware, boot_disk=entry / BOOT_DISK, sd_card=entry / SD_CARD,
                      usb_disk=entry / USB_DISK, kernel_version=resolution.kernel_version, cache_key=entry.name)


def _cache_key(resolution: _Resolution, variant: str) -> str:
    """Versions, recipe and variant; the templates are hashed too so editing one cannot go stale."""
    recipe = {
        "recipe": RECIPE_VERSION, "variant": variant, "packages": dict(resolution.packages),
        "modules": MODULES, "append": KERNEL_APPEND, "sizes": [SD_CARD_BYTES, USB_DISK_BYTES],
        "templates": [_INIT, _INITTAB, _PROFILE, _POWER_BUTTON, _UDHCPC_SCRIPT, _EXTLINUX],
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return f"{variant}-{digest}"


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Serialise builders sharing a cache: apt's own lock would fail the second one instead."""
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- host tools ---------------------------------------------------------------------------------


def _find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN_DIRS))


def _require_tools(tools: Mapping[str, str]) -> dict[str, str]:
    """Paths of `tools` (name -> Debian package); one error names every missing package."""
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for name, package in tools.items():
        path = _find_tool(name)
        if path:
            found[name] = path
        else:
            missing[name] = package
    if missing:
        listing = ", ".join(f"{tool} (Debian package {package})" for tool, package in missing.items())
        packages = " ".join(sorted(set(missing.values())))
        raise ConfigError(f"building the QEMU board's assets needs host tools that are missing: {listing}; "
                          f"install them with: apt-get install --no-install-recommends {packages}")
    return found


def _run(argv: Sequence[str], *, what: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run a host tool; its failure is the bench's problem, reported with the tool's last words."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BenchError(f"{what}: could not run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-15:])
        raise BenchError(f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n{tail}")
    return done.stdout


# --- apt ----------------------------------------------------------------------------------------


class _AptView:
    """An arm64-only apt sharing nothing with the host's state but its apt.conf (proxies and such)."""

    def __init__(self, directory: Path, log: Callable[[str], None]) -> None:
        self.dir = directory
        self.log = log
        self.refreshed = False  # lists fetched during this build, so a failure is not staleness

    @property
    def _lists(self) -> Path:
        return self.dir / "lists"

    @property
    def _resolved(self) -> Path:
        return self.dir / "resolved.json"

    def has_resolution(self) -> bool:
        """True when resolving needs neither network nor apt."""
        return self._saved_resolution() is not None

    def resolve(self) -> _Resolution:
        """Package versions from the cached lists; fetches lists only when there are none."""
        if not self._has_lists():
            self.update()
        saved = self._saved_resolution()
        if saved is not None:
            return saved
        fingerprint = self._fingerprint()
        kernel = _kernel_dependency(self._show([KERNEL_META])[KERNEL_META].get("Depends", ""))
        records = self._show([kernel, *USERSPACE_PACKAGES])
        resolution = _Resolution(kernel.removeprefix("linux-image-"),
                                 {name: records[name]["Version"] for name in (kernel, *USERSPACE_PACKAGES)})
        self.log("resolve: " + ", ".join(f"{name} {version}" for name, version in resolution.packages.items()))
        scratch = self._resolved.with_suffix(".tmp")
        scratch.write_text(json.dumps({"lists": fingerprint, "kernel_version": resolution.kernel_version,
                                       "packages": resolution.packages}, indent=1))
        scratch.replace(self._resolved)  # atomically: a torn file would be read on the next call
        return resolution

    def _saved_resolution(self) -> _Resolution | None:
        """What the last resolution found, if it was made from the lists now in the cache."""
        try:
            saved = json.loads(self._resolved.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("lists") != self._fingerprint():
            return None
        return _Resolution(saved["kernel_version"], saved["packages"])

    def update(self) -> None:
        self.log(f"update: apt-get update for arm64 ({', '.join(suite for _, suite in DEBIAN_SOURCES)})")
        self._apt("apt-get", ["update"], what="fetching Debian's arm64 package lists")
        if not self._has_lists():
            raise BenchError(f"apt-get update left no arm64 package lists in {self._lists}")
        self._resolved.unlink(missing_ok=True)  # unchanged lists keep their mtimes, so drop it explicitly
        self.refreshed = True

    def download(self, resolution: _Resolution) -> list[Path]:
        """The .deb files, kept across builds so a second variant or a recipe bump costs no network."""
        debs_dir = self.dir / "debs"
        debs_dir.mkdir(parents=True, exist_ok=True)
        paths = {name: _deb_in(debs_dir, name, version) for name, version in resolution.packages.items()}
        wanted = [f"{name}={resolution.packages[name]}" for name, path in paths.items() if path is None]
        if wanted:
            self.log(f"download: {' '.join(wanted)}")
            with tempfile.TemporaryDirectory(dir=self.dir, prefix="download-") as tmp:
                self._apt("apt-get", ["download", *wanted], what=f"downloading {' '.join(wanted)}", cwd=Path(tmp))
                for name, version in resolution.packages.items():
                    if paths[name] is None:
                        fetched = _deb_in(Path(tmp), name, version)
                        if fetched is None:
                            raise BenchError(f"apt-get download reported success but left no .deb for {name}")
                        paths[name] = fetched.replace(debs_dir / fetched.name)
        for stale in set(debs_dir.glob("*.deb")) - set(paths.values()):
            stale.unlink()  # superseded versions; only the current resolution is ever unpacked again
        return [path for path in paths.values() if path is not None]

    def _prepare(self) -> None:
        if not ARCHIVE_KEYRING.is_file():
            raise ConfigError(f"Debian's archive keyring {ARCHIVE_KEYRING} is missing; it comes from the Debian "
                              "package debian-archive-keyring: apt-get install --no-install-recommends "
                              "debian-archive-keyring")
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "status").touch()
        (self.dir / "sources.list").write_text("".join(
            f"deb [arch=arm64 signed-by={ARCHIVE_KEYRING}] {url} {suite} main\n" for url, suite in DEBIAN_SOURCES))

    def _options(self) -> list[str]:
        options = {
            "APT::Architecture": "arm64", "APT::Architectures": "arm64",
            "Dir::State": self.dir, "Dir::State::Lists": self._lists, "Dir::State::status": self.dir / "status",
            "Dir::Cache": self.dir / "cache",
            "Dir::Etc::SourceList": self.dir / "sources.list", "Dir::Etc::SourceParts": self.dir / "sources.list.d",
            "Dir::Etc::Preferences": self.dir / "preferences", "Dir::Etc::PreferencesParts": self.dir / "preferences.d",
            "Acquire::Languages": "none",
        }
        if os.geteuid() == 0:
            options["APT::Sandbox::User"] = "root"  # _apt cannot write into a cache owned by whoever ran this
        return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]

    def _apt(self, tool: str, args: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
        path = _require_tools({tool: _APT_TOOLS[tool]})[tool]
        self._prepare()
        return _run([path, "-q", *self._options(), *args], what=what, cwd=cwd)

    def _show(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        output = self._apt("apt-cache", ["show", "--no-all-versions", *names],
                           what=f"looking up {' '.join(names)} in the arm64 package lists")
        records = {record["Package"]: record for record in _deb822(output) if "Package" in record}
        missing = [name for name in names if name not in records]
        if missing:
            raise BenchError(f"the arm64 package lists in {self._lists} have no {', '.join(missing)}")
        return records

    def _has_lists(self) -> bool:
        return self._lists.is_dir() and any(self._lists.glob("*_Packages*"))

    def _fingerprint(self) -> str:
        if not self._lists.is_dir():
            return ""
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self._lists.glob("*_Packages*"))
        return hashlib.sha256(json.dumps(files).encode()).hexdigest()


def _deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of `apt-cache show`; continuation lines are folded into their field."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                records.append(current)
            current, key = {}, ""
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return records


def _kernel_dependency(depends: str) -> str:
    """The concrete image package in `linux-image-arm64`'s Depends: the ABI this build uses."""
    for clause in depends.split(","):
        name = clause.split("|")[0].split("(")[0].strip()
        if name.startswith("linux-image-"):
            return name
    raise BenchError(f"{KERNEL_META} depends on no linux-image package (Depends: {depends!r})")


def _deb_in(directory: Path, name: str, version: str) -> Path | None:
    """apt-get download's file for name=version (apt writes an epoch's colon as %3a)."""
    quoted = version.replace(":", "%3a")
    return next(iter(sorted(directory.glob(f"{name}_{quoted}_*.deb"))), None)


# --- building -----------------------------------------------------------------------------------


def _build_entry(entry: Path, debs: Sequence[Path], resolution: _Resolution, variant: str,
                 tools: Mapping[str, str], log: Callable[[str], None]) -> None:
    """Build into `<key>.partial` and rename: a crash leaves nothing that looks finished."""
    partial = entry.with_name(entry.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    version = resolution.kernel_version
    with tempfile.TemporaryDirectory(dir=entry.parent, prefix="unpack-") as tmp:
        root = Path(tmp) / "root"
        log(f"unpack: {len(debs)} packages with dpkg-deb -x")
        for deb in debs:
            _run([tools["dpkg-deb"], "-x", str(deb), str(root)], what=f"unpacking {deb.name}")
        log(f"depmod: {version}")
        _run([tools["depmod"], "-b", str(root), version], what=f"depmod for {version}")
        kernel = root / "boot" / f"vmlinuz-{version}"
        _check_arm64_image(kernel)
        tree = _initramfs_tree(root, version, broken=variant == "broken-initramfs")
        initramfs = Path(tmp) / "initramfs.cpio.gz"
        initramfs.write_bytes(gzip.compress(_cpio_newc(tree), compresslevel=6, mtime=0))
        log(f"initramfs: {len(tree)} entries, {initramfs.stat().st_size // 1024} KiB gzipped"
            + (" (no busybox: the kernel finds no working init)" if variant == "broken-initramfs" else ""))
        extlinux = Path(tmp) / "extlinux.conf"
        extlinux.write_text(_EXTLINUX)
        log(f"boot disk: FAT partition with Image, initramfs.cpio.gz and extlinux/extlinux.conf ({BOOT_DISK})")
        _write_boot_disk(partial / BOOT_DISK, {"Image": kernel, "initramfs.cpio.gz": initramfs,
                                               "extlinux/extlinux.conf": extlinux}, tools)
    for name, size in ((SD_CARD, SD_CARD_BYTES), (USB_DISK, USB_DISK_BYTES)):
        with (partial / name).open("wb") as blank:
            blank.truncate(size)  # sparse: a blank card costs no disk
    (partial / _MARKER).write_text(json.dumps({"recipe": RECIPE_VERSION, "variant": variant,
                                               "kernel_version": version, "packages": resolution.packages},
                                              indent=1))
    if entry.exists():
        shutil.rmtree(entry)  # an older, unmarked leftover under the same key
    partial.rename(entry)
    log(f"built: {entry}")
    for stale in entry.parent.iterdir():
        if stale != entry and re.fullmatch(rf"{re.escape(variant)}-[0-9a-f]{{16}}", stale.name):
            shutil.rmtree(stale, ignore_errors=True)  # an older recipe or package set: never hit again


def _check_arm64_image(kernel: Path) -> None:
    """booti takes only an uncompressed arm64 Image; say so plainly if Debian ever changes that."""
    if not kernel.is_file():
        raise BenchError(f"the kernel package has no {kernel.name}")
    with kernel.open("rb") as handle:
        header = handle.read(64)
    if header[56:60] != b"ARM\x64":
        raise BenchError(f"{kernel.name} is not an uncompressed arm64 Image (no ARM\\x64 magic), which U-Boot's "
                         "booti needs")


# --- initramfs ----------------------------------------------------------------------------------


def _initramfs_tree(root: Path, version: str, *, broken: bool) -> dict[str, _Node]:
    """The initramfs as path -> node; `broken` leaves out busybox, so /init and every fallback dangle."""
    tree: dict[str, _Node] = {}
    for directory in ("dev", "proc", "sys", "tmp", "run", "root", "etc", "var/log", "usr/bin"):
        tree[directory] = _Node(stat.S_IFDIR | 0o755)
    tree["dev/console"] = _Node(stat.S_IFCHR | 0o600, rdev=(5, 1))  # init's stdio before devtmpfs
    busybox = (root / "bin" / "busybox").read_bytes()
    if not broken:
        tree["bin/busybox"] = _Node(stat.S_IFREG | 0o755, busybox)
    for applet in _busybox_applets(busybox):
        if applet != "busybox":  # Debian's table lists busybox itself, which must stay the binary
            tree[f"bin/{applet}"] = _Node(stat.S_IFLNK | 0o777, b"busybox")
    tree["sbin"] = _Node(stat.S_IFLNK | 0o777, b"bin")  # the kernel execs /sbin/modprobe and /sbin/init
    _add_program(tree, root, "usr/bin/lsusb")
    for library in EXTRA_LIBRARIES:
        _add_from_root(tree, root, _find_library(root, library))
    modules_dir = f"lib/modules/{version}"
    load, files, dep_lines = _module_closure(root / modules_dir, MODULES, version)
    for rel in files:
        tree[f"{modules_dir}/{rel}"] = _Node(stat.S_IFREG | 0o644, (root / modules_dir / rel).read_bytes())
    tree[f"{modules_dir}/modules.dep"] = _Node(stat.S_IFREG | 0o644, "".join(dep_lines).encode())
    tree[f"{modules_dir}/modules.builtin"] = _Node(stat.S_IFREG | 0o644,
                                                   (root / modules_dir / "modules.builtin").read_bytes())
    scripts = {
        "init": _INIT.replace("@MODULES@", " ".join(load)),
        "etc/acpi/PWRF/00000080": _POWER_BUTTON,
        "etc/udhcpc/default.script": _UDHCPC_SCRIPT,  # Debian's busybox looks there
    }
    for path, text in scripts.items():
        tree[path] = _Node(stat.S_IFREG | 0o755, text.encode())
    tree["etc/inittab"] = _Node(stat.S_IFREG | 0o644, _INITTAB.encode())
    tree["etc/profile"] = _Node(stat.S_IFREG | 0o644, _PROFILE.encode())
    for path in list(tree):  # every parent directory must precede its children in the archive
        parent = posixpath.dirname(path)
        while parent and parent not in tree:
            tree[parent] = _Node(stat.S_IFDIR | 0o755)
            parent = posixpath.dirname(parent)
    return tree


def _busybox_applets(binary: bytes) -> list[str]:
    """Applet names from busybox's own sorted, NUL-separated table (`busybox --list` cannot run here)."""
    start = binary.find(b"\0[\0[[\0")
    if start < 0:
        raise BenchError("busybox's applet table was not found in bin/busybox")
    names = binary[start + 1:binary.index(b"\0\0", start + 1)].decode("ascii").split("\0")
    needed = {"sh", "mount", "modprobe", "ip", "udhcpc", "acpid", "init", "cttyhack", "stty", "poweroff"}
    if names != sorted(names) or not needed <= set(names):
        raise BenchError(f"busybox's applet table looks wrong: {len(names)} names, missing "
                         f"{sorted(needed - set(names))}")
    return names


def _module_closure(modules_dir: Path, names: Sequence[str], version: str) -> tuple[list[str], list[str], list[str]]:
    """(names to modprobe, module files with every dependency, their modules.dep lines).

    Built-in drivers need no loading; a name that is neither module nor built-in means the
    kernel changed under the recipe, which must not pass silently.
    """
    deps: dict[str, list[str]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        module, _, rest = line.partition(":")
        deps[module] = rest.split()
    by_name = {_module_name(path): path for path in deps}
    builtin = {_module_name(line) for line in (modules_dir / "modules.builtin").read_text().split()}
    unknown = [name for name in names if name not in by_name and name not in builtin]
    if unknown:
        raise BenchError(f"kernel {version} has neither a module nor a built-in driver for {', '.join(unknown)}")
    load = [name for name in names if name in by_name]
    files: list[str] = []
    pending = [by_name[name] for name in load]
    while pending:
        path = pending.pop()
        if path not in files:
            files.append(path)
            pending.extend(deps[path])
    files.sort()
    return load, files, [f"{path}:{''.join(' ' + dep for dep in deps[path])}\n" for path in files]


def _module_name(path: str) -> str:
    name = posixpath.basename(path)
    for suffix in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("-", "_")


def _add_program(tree: dict[str, _Node], root: Path, rel: str) -> None:
    """A dynamic binary with its interpreter and every library it needs, transitively."""
    pending = [rel]
    done: set[str] = set()
    while pending:
        current = pending.pop()
        if current in done:
            continue
        done.add(current)
        real = _add_from_root(tree, root, current)
        interpreter, needed = _elf_dynamic((root / real).read_bytes(), current)
        if interpreter:
            pending.append(interpreter.lstrip("/"))
        pending.extend(_find_library(root, library) for library in needed)


def _add_from_root(tree: dict[str, _Node], root: Path, rel: str) -> str:
    """Copy `rel` keeping its symlinks (targets resolved inside `root`); return the regular file's path."""
    while True:
        source = root / rel
        if source.is_symlink():
            target = os.readlink(source)
            tree[rel] = _Node(stat.S_IFLNK | 0o777, target.encode())
            rel = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join(posixpath.dirname(rel), target))
        elif source.is_file():
            tree[rel] = _Node(stat.S_IFREG | stat.S_IMODE(source.stat().st_mode), source.read_bytes())
            return rel
        else:
            raise BenchError(f"{rel} is missing from the unpacked packages")


def _find_library(root: Path, name: str) -> str:
    for directory in _LIBRARY_DIRS:
        if (root / directory / name).exists() or (root / directory / name).is_symlink():
            return f"{directory}/{name}"
    raise BenchError(f"no package in the recipe provides {name}; add its package to USERSPACE_PACKAGES")


def _elf_dynamic(data: bytes, what: str) -> tuple[str | None, list[str]]:
    """(PT_INTERP, DT_NEEDED) of a 64-bit little-endian ELF, read from program headers only."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BenchError(f"{what} is not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interpreter: str | None = None
    dynamic: tuple[int, int] | None = None
    loads: list[tuple[int, int, int]] = []
    for index in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
        if p_type == 1:  # PT_LOAD
            loads.append((vaddr, offset, filesz))
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (offset, filesz)
        elif p_type == 3:  # PT_INTERP
            interpreter = data[offset:offset + filesz].rstrip(b"\0").decode()
    if dynamic is None:
        return interpreter, []
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + at) for at in range(0, dynamic[1] - 15, 16)]
    strtab_vaddr = next((value for tag, value in entries if tag == 5), None)  # DT_STRTAB
    strtab = next((offset + strtab_vaddr - vaddr for vaddr, offset, size in loads
                   if strtab_vaddr is not None and vaddr <= strtab_vaddr < vaddr + size), None)
    if strtab is None:
        raise BenchError(f"{what} has a dynamic section without a string table")
    needed = []
    for tag, value in entries:
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            start = strtab + value
            needed.append(data[start:data.index(b"\0", start)].decode())
    return interpreter, needed


def _cpio_newc(tree: Mapping[str, _Node]) -> bytes:
    """The kernel's initramfs format, with fixed owners and times so equal inputs give equal bytes."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    def header(ino: int, name: str, mode: int, nlink: int, size: int, rdev: tuple[int, int]) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(encoded), 0)
        out.extend(b"070701" + b"".join(b"%08X" % field for field in fields) + encoded)
        pad()

    for ino, name in enumerate(sorted(tree), start=1):  # sorted: "a" precedes "a/b"
        node = tree[name]
        header(ino, name, node.mode, 2 if stat.S_ISDIR(node.mode) else 1, len(node.data), node.rdev)
        out.extend(node.data)
        pad()
    header(0, "TRAILER!!!", 0, 1, 0, (0, 0))
    return bytes(out)


# --- boot disk ----------------------------------------------------------------------------------


def _write_boot_disk(path: Path, files: Mapping[str, Path], tools: Mapping[str, str]) -> None:
    """An MBR disk with one bootable FAT16 partition at 1 MiB, written with mtools: no loop mounts, no root."""
    payload = sum(source.stat().st_size for source in files.values())
    fs_mib = max(16, math.ceil(payload * 1.05 / _MIB) + 4)  # FAT tables, cluster slack and a little room
    fs_sectors = fs_mib * _MIB // _SECTOR
    with path.open("wb") as disk:
        disk.truncate((_PARTITION_LBA + fs_sectors) * _SECTOR)
        disk.write(_mbr(_PARTITION_LBA, fs_sectors))
    _run([tools["mkfs.vfat"], "-F", "16", "-n", "HILBOOT", "--invariant", "-h", str(_PARTITION_LBA),
          "--offset", str(_PARTITION_LBA), str(path), str(fs_mib * 1024)], what="formatting the boot partition")
    image = f"{path}@@{_PARTITION_LBA * _SECTOR}"
    directories = sorted({posixpath.dirname(name) for name in files} - {""})
    for directory in directories:
        _run([tools["mmd"], "-i", image, f"::{directory}"], what=f"creating {directory} on the boot disk",
             env=_mtools_env())
    for name, source in files.items():
        _run([tools["mcopy"], "-i", image, str(source), f"::{name}"], what=f"copying {name} to the boot disk",
             env=_mtools_env())
    listing = _run([tools["mdir"], "-i", image, "-/", "-b", "::"], what="listing the boot disk", env=_mtools_env())
    present = {line.strip().removeprefix("::/").lower() for line in listing.splitlines()}
    absent = [name for name in files if name.lower() not in present]
    if absent:
        raise BenchError(f"the boot disk lacks {', '.join(absent)} after copying; mdir shows:\n{listing}")


def _mtools_env() -> dict[str, str]:
    """mtools refuses images whose size does not match a floppy or disk geometry unless told not to check."""
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def _mbr(first_lba: int, sectors: int) -> bytes:
    """A DOS partition table with one active FAT16-LBA partition, which distro boot scans first."""
    mbr = bytearray(_SECTOR)
    struct.pack_into("<I", mbr, 440, 0x314C4948)  # fixed disk signature ("HIL1"): same inputs, same bytes
    struct.pack_into("<B3sB3sII", mbr, 446, 0x80, b"\xfe\xff\xff", 0x0E, b"\xfe\xff\xff", first_lba, sectors)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or find) the assets and print their paths on stdout; progress goes to stderr."""
    parser = argparse.ArgumentParser(prog="python -m harness.qemu.assets",
                                     description="Build the QEMU arm64 board's boot assets from Debian packages.")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache directory (default: the user's cache directory, see harness/cache.py)")
    parser.add_argument("--variant", choices=VARIANTS, default="good")
    args = parser.parse_args(argv)
    try:
        assets = build_assets((args.cache or cache_dir("qemu")).resolve(), variant=args.variant,
                              log=lambda message: print(message, file=sys.stderr, flush=True))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for field in dataclasses.fields(assets):
        print(f"{field.name}: {getattr(assets, field.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
