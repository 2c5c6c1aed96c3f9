"""What a block device is, read from sysfs and the mount table: the facts the flash safety checks judge.

Reading and judging are apart so that every refusal can be tested against a fake `/sys` tree, mount
table and swap list built in a temporary directory: each source is a path parameter here, and
nothing in this module decides anything.

The layout read is the kernel's: `/sys/class/block/<name>` is a symlink into `/sys/devices/...`;
a whole disk holds its partitions as subdirectories (each with a `partition` file); `size` counts
512-byte sectors whatever the logical block size; `holders/` and `slaves/` link device-mapper, md
and LVM stacks; a loop device has `loop/backing_file`. Whether a disk is hotplug is decided the
way `lsblk` decides HOTPLUG: the disk's own `removable` flag, or an ancestor in `/sys/devices` that
is on a USB/PCMCIA/FireWire/Memory Stick bus or says `removable` (util-linux,
`sysfs_blkdev_is_hotpluggable`). An SD card in a built-in slot (`mmcblkN`) has `removable` 0 on
purpose (the kernel's mmc driver: the medium is removed with the block device), so an mmc card of
type `SD` counts as removable too; an eMMC (type `MMC`) does not.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BenchError, ConfigError

SECTOR = 512  # sysfs `size` is in 512-byte sectors, whatever the device's logical block size
# Buses whose devices can come and go: anything behind them is hotplug (util-linux's list).
HOTPLUG_SUBSYSTEMS = frozenset({"usb", "pcmcia", "ieee1394", "memstick"})
SCSI_TYPE_ROM = "5"  # `device/type` of a SCSI CD/DVD drive


@dataclass(frozen=True)
class Sources:
    """Where the facts come from; the defaults are the running system's, tests point them at a tmp tree.

    `root_device` names the device holding `/` (`sda2`, `/dev/sda2` or `8:2`); None reads it from
    the mount table's `/` entry.
    """

    sysfs: Path = Path("/sys")
    mountinfo: Path = Path("/proc/self/mountinfo")
    swaps: Path = Path("/proc/swaps")
    root_device: str | None = None

    @property
    def class_block(self) -> Path:
        return self.sysfs / "class" / "block"


@dataclass(frozen=True)
class Mount:
    """One mount table line that matters here: which block device is mounted where."""

    devnum: str  # "major:minor" as mountinfo prints it (0:N for btrfs and virtual filesystems)
    source: str  # the mount source, e.g. /dev/sdb1
    mountpoint: str


@dataclass(frozen=True)
class BlockTarget:
    """The fact sheet of one block device node, as read; `harness.flash.safety` judges it."""

    node: str  # the device node as given (/dev/sdb)
    name: str  # the kernel's name (sdb)
    devnum: str  # "major:minor"
    size_bytes: int
    removable: bool  # the disk's own `removable` flag (medium can be removed from the device)
    hotplug: bool  # the device itself can be unplugged (USB, ...), or an SD card in a slot
    read_only: bool
    rotational: bool | None
    vendor: str | None
    model: str | None
    subsystems: tuple[str, ...]  # buses from the device up, e.g. ("scsi", "usb", "pci")
    virtual: bool  # under /sys/devices/virtual: loop, ram, zram, dm, md, nbd
    optical: bool
    is_partition: bool
    parent_disk: str | None  # the whole disk a partition belongs to
    partitions: tuple[str, ...]
    holders: tuple[str, ...]  # devices stacked on the disk or any of its partitions (dm, md, LVM)
    slaves: tuple[str, ...]
    backing_file: str | None  # a loop device's file
    mounts: tuple[Mount, ...]  # the disk, a partition or a holder of them mounted somewhere
    swaps: tuple[str, ...]  # the disk, a partition or a holder of them in use as swap
    root_disks: frozenset[str]  # the whole disks under `/` (through partitions, dm, md)
    sources: Sources = field(default_factory=Sources)

    @property
    def kind(self) -> str:
        """loop, ram, zram, optical, virtual, partition or disk: what the node is, by what it must not be."""
        if self.name.startswith("loop"):
            return "loop"
        if re.fullmatch(r"ram\d+", self.name):
            return "ram"
        if self.name.startswith("zram"):
            return "zram"
        if self.optical:
            return "optical"
        if self.virtual:
            return "virtual"
        return "partition" if self.is_partition else "disk"

    @property
    def model_text(self) -> str:
        """Vendor and model as a person reads them off the label, or what stands in for one."""
        if self.backing_file is not None:
            return f"loop device onto {self.backing_file}"
        text = " ".join(part for part in (self.vendor, self.model) if part)
        return text or "unknown model"

    def disks_holding(self, path: str | os.PathLike[str]) -> frozenset[str]:
        """The whole disks a file lives on (through partitions, dm and md), empty for tmpfs and the like."""
        dev = os.stat(path).st_dev
        return underlying_disks(self.sources, f"{os.major(dev)}:{os.minor(dev)}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _flag(path: Path) -> bool:
    return _read(path) == "1"


def _names(path: Path) -> tuple[str, ...]:
    try:
        return tuple(sorted(entry.name for entry in path.iterdir()))
    except OSError:
        return ()


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\\040`)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def read_mounts(mountinfo: Path) -> list[Mount]:
    """Block-ish mounts from a `/proc/self/mountinfo` file: `id parent maj:min root mountpoint ... - fstype source`."""
    mounts = []
    for line in (_read(mountinfo) or "").splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(devnum=fields[2], source=_unescape(tail[1]), mountpoint=_unescape(fields[4])))
    return mounts


def read_swaps(swaps: Path) -> list[str]:
    """The swap areas in use, from a `/proc/swaps` file (a header line, then `Filename Type Size ...`)."""
    lines = (_read(swaps) or "").splitlines()[1:]
    return [_unescape(line.split()[0]) for line in lines if line.split()]


def _dm_names(sources: Sources) -> dict[str, str]:
    """`/dev/mapper/<name>` -> dm-N, from each dm device's `dm/name`."""
    found = {}
    for name in _names(sources.class_block):
        mapped = _read(sources.class_block / name / "dm" / "name")
        if mapped:
            found[mapped] = name
    return found


def _by_devnum(sources: Sources, devnum: str) -> str | None:
    for name in _names(sources.class_block):
        if _read(sources.class_block / name / "dev") == devnum:
            return name
    return None


def kernel_name(sources: Sources, ref: str) -> str | None:
    """The kernel name (`sdb1`, `dm-0`) a mount source, swap entry or node names, None if not a block device.

    Accepts `/dev/sdb1`, a `/dev/disk/by-*` or `/dev/mapper/*` link, a bare name or `major:minor`.
    """
    if re.fullmatch(r"\d+:\d+", ref):
        return _by_devnum(sources, ref)
    if ref.startswith("/dev/mapper/"):
        mapped = _dm_names(sources).get(ref.removeprefix("/dev/mapper/"))
        if mapped:
            return mapped
    name = os.path.basename(os.path.realpath(ref)) if ref.startswith("/") else ref
    if name and (sources.class_block / name).exists():
        return name
    if not ref.startswith("/"):
        return None  # "overlay", "tmpfs", "proc": a mount source that is no device
    try:
        info = os.stat(ref)
    except OSError:
        return None
    if stat.S_ISBLK(info.st_mode):
        return _by_devnum(sources, f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}")
    return None


def _is_partition(sources: Sources, name: str) -> bool:
    return (sources.class_block / name / "partition").exists()


def _parent_disk(sources: Sources, name: str) -> str | None:
    if not _is_partition(sources, name):
        return None
    return (sources.class_block / name).resolve().parent.name


def underlying_disks(sources: Sources, ref: str) -> frozenset[str]:
    """The whole disks beneath a device (partition -> its disk; dm/md -> their slaves' disks), by name or devnum.

    A mount's devnum is 0:N for btrfs and virtual filesystems; then the mount table's source names
    the device, if any.
    """
    name = kernel_name(sources, ref)
    if name is None and re.fullmatch(r"\d+:\d+", ref):
        for mount in read_mounts(sources.mountinfo):
            if mount.devnum == ref and mount.source.startswith("/dev/"):
                name = kernel_name(sources, mount.source)
                if name is not None:
                    break
    if name is None:
        return frozenset()
    return _expand(sources, name, set())


def _expand(sources: Sources, name: str, seen: set[str]) -> frozenset[str]:
    if name in seen:
        return frozenset()
    seen.add(name)
    parent = _parent_disk(sources, name)
    if parent is not None:
        return _expand(sources, parent, seen)
    slaves = _names(sources.class_block / name / "slaves")
    if slaves:
        return frozenset().union(*(_expand(sources, slave, seen) for slave in slaves))
    return frozenset({name})


def _all_holders(sources: Sources, names: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    pending = list(names)
    while pending:
        for holder in _names(sources.class_block / pending.pop() / "holders"):
            if holder not in found:
                found.append(holder)
                pending.append(holder)
    return tuple(found)


def _chain(sources: Sources, name: str) -> tuple[list[Path], Path]:
    """The device's directory in /sys/devices, then its ancestors up to /sys/devices (exclusive)."""
    real = (sources.class_block / name).resolve()
    top = (sources.sysfs / "devices").resolve()
    chain = []
    node = real
    while node != top and top in node.parents:
        chain.append(node)
        node = node.parent
    return chain, top


def _subsystem(path: Path) -> str | None:
    link = path / "subsystem"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def _hotplug_and_buses(sources: Sources, name: str) -> tuple[bool, tuple[str, ...]]:
    chain, _ = _chain(sources, name)
    hotplug = False
    buses: list[str] = []
    for node in chain[1:]:  # the block device's own `removable` is 0/1; ancestors say removable/fixed/unknown
        subsystem = _subsystem(node)
        if subsystem and subsystem not in buses and subsystem != "block":
            buses.append(subsystem)
        if subsystem in HOTPLUG_SUBSYSTEMS or _read(node / "removable") == "removable":
            hotplug = True
        if subsystem == "mmc" and _read(node / "type") == "SD":
            hotplug = True  # an SD card in a slot: the kernel never sets `removable` on mmcblk
    return hotplug, tuple(buses)


def read_block_target(node: str, sources: Sources | None = None) -> BlockTarget:
    """Read the fact sheet of `node` (`/dev/sdb`, a `/dev/disk/by-*` link, or `sdb`) from `sources`.

    Raises BenchError when sysfs has no such block device (unplugged, or the mux not switched to
    the host) and ConfigError when the path exists but is not a block device.
    """
    sources = sources or Sources()
    name = kernel_name(sources, node)
    if name is None:
        if node.startswith("/") and os.path.exists(node) and not stat.S_ISBLK(os.stat(node).st_mode):
            raise ConfigError(f"{node} is not a block device: the block-device safety checks do not apply to it")
        raise BenchError(f"{node}: no such block device in {sources.class_block} (unplugged, or the SD mux is "
                         "not switched to the host?)")
    base = sources.class_block / name
    is_partition = _is_partition(sources, name)
    disk = _parent_disk(sources, name) if is_partition else name
    disk_dir = sources.class_block / (disk or name)
    info_dir = disk_dir / "device"
    partitions = tuple(p for p in _names(disk_dir.resolve()) if (disk_dir.resolve() / p / "partition").exists())
    family = (name, *partitions) if not is_partition else (name,)
    holders = _all_holders(sources, family)
    in_use = {*family, *holders}
    hotplug, buses = _hotplug_and_buses(sources, name)
    devnums = {_read(sources.class_block / member / "dev") for member in in_use} - {None}
    mounts = tuple(m for m in read_mounts(sources.mountinfo) if m.devnum in devnums
                   or (m.source.startswith("/dev/") and kernel_name(sources, m.source) in in_use))
    swaps = tuple(s for s in read_swaps(sources.swaps) if kernel_name(sources, s) in in_use)
    rotational = _read(disk_dir / "queue" / "rotational")
    root = sources.root_device
    if root is None:
        root_mounts = [m for m in read_mounts(sources.mountinfo) if m.mountpoint == "/"]
        root_disks = (underlying_disks(sources, root_mounts[-1].devnum)
                      or underlying_disks(sources, root_mounts[-1].source)) if root_mounts else frozenset()
    else:
        root_disks = underlying_disks(sources, root)
    chain, _ = _chain(sources, name)
    return BlockTarget(
        node=node if node.startswith("/") else f"/dev/{name}",
        name=name,
        devnum=_read(base / "dev") or "",
        size_bytes=int(_read(base / "size") or 0) * SECTOR,
        removable=_flag(disk_dir / "removable"),
        hotplug=hotplug,
        read_only=_flag(base / "ro"),
        rotational=None if rotational is None else rotational == "1",
        vendor=_read(info_dir / "vendor") or None,
        model=_read(info_dir / "model") or _read(info_dir / "name") or None,
        subsystems=buses,
        virtual=any(p.name == "virtual" for p in chain[-1:]),
        optical=bool(re.fullmatch(r"sr\d+", name)) or _read(info_dir / "type") == SCSI_TYPE_ROM,
        is_partition=is_partition,
        parent_disk=disk if is_partition else None,
        partitions=partitions,
        holders=holders,
        slaves=_names(base / "slaves"),
        backing_file=_read(base / "loop" / "backing_file") or None,
        mounts=mounts,
        swaps=swaps,
        root_disks=root_disks,
        sources=sources,
    )
