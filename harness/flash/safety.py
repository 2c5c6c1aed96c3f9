"""Whether a block device may be written: a flash to the wrong disk destroys a workstation.

The target is named by the bench's udev identity (the SD mux's port, the reader's serial), never a
typed `/dev/sdX` alone: sdX letters follow plug order, so yesterday's card reader is today's backup
disk. Once resolved, the device's facts (harness.flash.blockdev) are judged with the rules
Raspberry Pi Imager and balenaEtcher use: loop, RAM and optical devices are skipped; a disk that is
neither removable nor hotplug is a system disk; read-only disks, disks smaller than the image, the
disk holding `/` and the disk holding the image itself are refused; so is anything mounted, in use
as swap or held by device-mapper/md. The write then opens the node `O_EXCL`, which the kernel
refuses (EBUSY) while anything mounts or holds it: the check gives the reason in words, the open
closes the race between check and write.

Every reason found is reported at once, so fixing one does not just reveal the next. What the
device *is* (a partition, a system disk, the root disk) is the bench file's mistake: ConfigError.
What state it is *in* (no card yet, mounted, write-protected, too small) is the bench's: BenchError.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import BenchError, ConfigError
from harness.flash.blockdev import SECTOR, BlockTarget, Sources, read_block_target
from harness.transports.udev import resolve_device_node

LARGE_DISK = 128 * 1000**3  # Imager and Etcher warn above this: SD cards rarely are, backup disks are
NO_MEDIUM_HINT = ("a card reader reports size 0 until the card is ready: wait for it (wait_for_medium), "
                  "and check that the card is inserted and the SD mux is switched to the host")


class UnsafeTarget(BenchError):
    """The device is the right one but not writable now (no medium, mounted, write-protected, too small)."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(message)


class WrongTarget(ConfigError):
    """The bench names a device that must never be flashed (a partition, a system disk, the root disk, ...)."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(message)


def human_size(size: int) -> str:
    """Decimal units, as card and disk labels print them: 15.9 GB, not 14.8 GiB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def describe(facts: BlockTarget) -> str:
    """`/dev/sdb, 15.9 GB, Generic STORAGE DEVICE (usb, removable)`: the line shown before anything is written.

    A person glancing at it should recognise their card, or stop the run; a disk over 128 GB gets a
    question, since SD cards rarely are and backup disks usually are.
    """
    traits = [*facts.subsystems[:1], *(["removable"] if facts.removable or facts.hotplug else []),
              *(["read-only"] if facts.read_only else [])]
    line = f"{facts.node}, {human_size(facts.size_bytes)}, {facts.model_text}"
    if traits:
        line += f" ({', '.join(traits)})"
    if facts.size_bytes > LARGE_DISK:
        line += f"; larger than {human_size(LARGE_DISK)}: is this really the board's card?"
    return line


def _system_disk(facts: BlockTarget) -> bool:
    return not facts.removable and not facts.hotplug


def _wrong_target_reasons(facts: BlockTarget, image_path: str | os.PathLike[str], allow_loop: bool) -> list[str]:
    """Reasons the device is not a thing to flash at all: the bench file names the wrong device."""
    reasons = []
    kind = facts.kind
    if kind in ("ram", "zram"):
        reasons.append(f"it is a RAM disk ({kind}), not a medium a board boots from: name the SD mux's or card "
                       "reader's disk by its udev identity")
    elif kind == "optical":
        reasons.append("it is an optical drive: name the SD mux's or card reader's disk by its udev identity")
    elif kind == "virtual":
        reasons.append("it is a virtual device (device-mapper, md, nbd) stacked on other disks: name the physical "
                       "disk by its udev identity")
    elif kind == "loop" and not allow_loop:
        reasons.append(f"it is a {facts.model_text}: a loop device is a target only where the bench explicitly "
                       "allows one (for tests and image work)")
    if facts.is_partition:
        reasons.append(f"it is a partition of /dev/{facts.parent_disk}, not a whole disk: an image carries its "
                       f"own partition table; name the disk (/dev/{facts.parent_disk}, or DEVTYPE=disk in the udev "
                       "identity)")
    target_disks = {facts.parent_disk or facts.name}
    if target_disks & facts.root_disks:
        reasons.append("it holds / (this host's root filesystem): the bench's identity names the wrong disk")
    image = os.fspath(image_path)
    try:
        image_disks = facts.disks_holding(image)
    except FileNotFoundError:
        raise ConfigError(f"the image {image} does not exist") from None
    if target_disks & image_disks:
        reasons.append(f"it holds the image file {image} itself: writing would destroy the image as it is read")
    if facts.backing_file is not None and os.path.realpath(facts.backing_file) == os.path.realpath(image):
        reasons.append(f"it is a loop device onto the image file {image} itself")
    if _system_disk(facts) and kind not in ("ram", "zram", "virtual", "loop", "optical"):
        reasons.append("it is neither removable nor hotplug (not on USB, not an SD card in a slot): a system disk "
                       "of this host. If it truly is the board's medium, attach it through an SD mux or a USB "
                       "reader")
    return reasons


def _state_reasons(facts: BlockTarget, image_size: int) -> list[str]:
    """Reasons the device cannot be written now: the bench can fix them without changing its file."""
    reasons = []
    if facts.size_bytes == 0:
        if facts.kind == "loop":
            reasons.append("it is a loop device attached to no file (size 0): `losetup` it onto a file first")
        else:
            reasons.append(f"it reports no medium (size 0): {NO_MEDIUM_HINT}")
    if facts.read_only:
        reasons.append("it is read-only: slide the SD adapter's lock switch to unlocked and re-insert the card "
                       "(or the reader is write-protected)")
    if facts.mounts:
        listed = ", ".join(f"{m.source} on {m.mountpoint}" for m in facts.mounts)
        points = " ".join(m.mountpoint for m in facts.mounts)
        reasons.append(f"it is mounted ({listed}): unmount it (`umount {points}`) and keep the desktop from "
                       "automounting the card")
    if facts.swaps:
        reasons.append(f"it is in use as swap ({', '.join(facts.swaps)}): `swapoff {' '.join(facts.swaps)}`")
    if facts.holders:
        names = ", ".join(facts.holders)
        reasons.append(f"it is held by {names} (device-mapper, LVM or md stacked on it): remove the mapping "
                       "(`dmsetup remove`, `vgchange -an`, `mdadm --stop`)")
    if 0 < facts.size_bytes < image_size:
        reasons.append(f"it is smaller than the image ({human_size(facts.size_bytes)} < {human_size(image_size)}, "
                       f"{image_size} bytes): use a larger card")
    return reasons


def check_target(facts: BlockTarget, *, image_size: int, image_path: str | os.PathLike[str],
                 allow_loop: bool = False) -> None:
    """Refuse to write `facts`' device unless every safety rule passes; return None when it may be written.

    Raises WrongTarget (a ConfigError) when the device is one that must never be flashed, else
    UnsafeTarget (a BenchError) when it cannot be written now; the message names the device, its
    size and model, every reason and what to do about each.
    """
    wrong = _wrong_target_reasons(facts, image_path, allow_loop)
    state = _state_reasons(facts, image_size)
    if not wrong and not state:
        return
    reasons = wrong + state
    message = (f"refusing to write {facts.node} ({human_size(facts.size_bytes)}, {facts.model_text}):\n"
               + "\n".join(f"  - {reason}" for reason in reasons))
    raise (WrongTarget if wrong else UnsafeTarget)(message, reasons)


def checked_target(node: str, *, image_size: int, image_path: str | os.PathLike[str], allow_loop: bool = False,
                   sources: Sources | None = None) -> BlockTarget:
    """Read `node`'s facts and check them; the facts of a device that may be written (show `describe` of them)."""
    facts = read_block_target(node, sources)
    check_target(facts, image_size=image_size, image_path=image_path, allow_loop=allow_loop)
    return facts


def open_exclusive(node: str, *, flags: int = 0, readable: bool = False,
                   opener: Callable[[str, int], int] = os.open) -> int:
    """Open a block device for writing with O_EXCL, which the kernel refuses while it is mounted or held.

    On a block device, O_EXCL without O_CREAT claims the device exclusively (as `bmaptool` and
    `mkfs` do): it fails with EBUSY while a filesystem, swap, dm/md or another exclusive opener holds
    it, and keeps them off while the write runs. On a regular file it means nothing, so anything
    but a block device is refused. `readable` opens O_RDWR for a read-back verify through the same
    descriptor; `flags` adds e.g. O_DIRECT or O_SYNC; `opener` is for tests.
    """
    access = os.O_RDWR if readable else os.O_WRONLY
    try:
        fd = opener(node, access | os.O_EXCL | os.O_CLOEXEC | flags)
    except OSError as error:
        raise BenchError(_open_error(node, error)) from error
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISBLK(mode):
        os.close(fd)
        raise BenchError(f"{node} is not a block device: O_EXCL protects only block devices, so it is not "
                         "opened as one")
    return fd


def _open_error(node: str, error: OSError) -> str:
    code = error.errno
    if code == errno.EBUSY:
        return (f"{node} is busy (EBUSY): it is mounted, in use as swap, held by device-mapper/LVM/md, or open by "
                "another writer; unmount it (and stop the desktop's automount) or end the other flash")
    if code in (errno.ENOENT, errno.ENXIO, errno.ENODEV):
        return f"{node} is gone ({errno.errorcode[code]}): the reader or SD mux was unplugged or switched to the board"
    if code == errno.ENOMEDIUM:
        return f"{node} has no medium (ENOMEDIUM): {NO_MEDIUM_HINT}"
    if code == errno.EROFS:
        return f"{node} is read-only (EROFS): slide the SD adapter's lock switch to unlocked and re-insert the card"
    if code in (errno.EACCES, errno.EPERM):
        return (f"{node}: permission denied opening it for writing: run as a member of the `disk` group, or give "
                "the mux's disk a udev rule with GROUP/MODE for the bench user")
    return f"{node}: cannot open it for writing: {error.strerror or error}"


def wait_for_medium(name: str, timeout: float, *, sources: Sources | None = None, interval: float = 0.2) -> int:
    """Poll the device's sysfs size until it is not 0; the medium's size in bytes.

    A USB card reader or SD mux enumerates its disk at once but reports size 0 until the card has
    been probed; writing then fails or writes nothing. The device may also still be appearing, so
    a missing sysfs entry is waited for too. BenchError after `timeout` seconds.
    """
    sources = sources or Sources()
    kernel = os.path.basename(name)
    size_file = sources.class_block / kernel / "size"
    deadline = time.monotonic() + timeout
    seen = False
    while True:
        try:
            sectors = int(size_file.read_text().strip() or 0)
            seen = True
        except (OSError, ValueError):
            sectors = 0
        if sectors > 0:
            return sectors * SECTOR
        if time.monotonic() >= deadline:
            state = "reported size 0" if seen else "did not appear"
            raise BenchError(f"/dev/{kernel} {state} for {timeout:g} s: no medium; check that the card is "
                             "inserted and the SD mux is switched to the host")
        time.sleep(interval)


def resolve_block_target(udev: Mapping[str, str] | None, device: str | None, *, allow_path: bool,
                         where: str = "the bench's flash target", context: Any | None = None) -> str:
    """The block device node the bench names: by udev identity, or a bare path only where the bench allows it.

    A typed `/dev/sdX` can name another disk after a replug, so a bare path is refused unless the
    bench explicitly allows one (an image file for the virtual board, a loop device for tests).
    An identity matches the disk only (DEVTYPE=disk is added unless given): a card's partitions
    carry the same ID_PATH and serial as the card.
    """
    if device is not None and udev is None and not allow_path:
        raise ConfigError(f"{where}: a bare path ({device}) can name another disk after a replug; name the "
                          "target by its udev identity (e.g. ID_PATH or ID_SERIAL_SHORT from `udevadm info -q "
                          "property -n /dev/sdX`), or allow a path explicitly for an image file or loop device")
    wanted = None if udev is None else {"DEVTYPE": "disk", **dict(udev)}
    return resolve_device_node("block", device=device, udev=wanted, where=where, context=context)
