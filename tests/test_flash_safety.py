"""The checks that decide whether a block device may be written, against sysfs trees laid out as the kernel does.

Each refusal is provoked in a fake `/sys` (devices under `/sys/devices/...`, `/sys/class/block/<name>`
symlinks into them, partitions as subdirectories, `holders/`, `slaves/`, `loop/backing_file`, bus
`subsystem` links), a fake `/proc/self/mountinfo` and a fake `/proc/swaps`, built under tmp_path.
The O_EXCL open is tried on a real loop device (this machine runs the tests as root with losetup),
and its errno mapping with an opener that fails as the kernel would.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import BenchError, ConfigError
from harness.flash.blockdev import Sources, read_block_target, read_mounts, underlying_disks
from harness.flash.safety import (
    UnsafeTarget,
    WrongTarget,
    check_target,
    checked_target,
    describe,
    human_size,
    open_exclusive,
    resolve_block_target,
    wait_for_medium,
)

GB = 1000**3
CARD_SECTORS = 31116288  # a "16 GB" SD card: 15.9 GB
USB_DISK = "pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/host6/target6:0:0/6:0:0:0"


class FakeSys:
    """A /sys tree (and mount table, swap list) as the kernel lays them out, for the devices a test adds."""

    def __init__(self, root: Path) -> None:
        self.root = root / "sys"
        self.class_block = self.root / "class" / "block"
        self.class_block.mkdir(parents=True)
        self.mountinfo = root / "mountinfo"
        self.swaps = root / "swaps"
        self.mountinfo.write_text("22 27 0:21 / /proc rw,relatime - proc proc rw\n")
        self.swaps.write_text("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        self.next_minor = 16
        real = os.stat(root).st_dev
        self.real_devnum = f"{os.major(real)}:{os.minor(real)}"  # the test's own files live there
        self.spare_minor = 0

    def devnum(self, wanted: str, *, deliberate: bool = False) -> str:
        """`wanted`, unless it is the real device under tmp_path: then a fake disk would seem to hold the image."""
        if wanted != self.real_devnum or deliberate:
            return wanted
        self.spare_minor += 1
        return f"240:{self.spare_minor}"  # a major for local/experimental use: no real disk here has it

    def sources(self, root_device: str | None = None) -> Sources:
        return Sources(sysfs=self.root, mountinfo=self.mountinfo, swaps=self.swaps, root_device=root_device)

    def node(self, path: str, subsystem: str | None = None, **attributes: str) -> Path:
        """A directory in /sys/devices with a `subsystem` link (as `../../bus/usb`) and attribute files."""
        directory = self.root / "devices" / path
        directory.mkdir(parents=True, exist_ok=True)
        if subsystem is not None:
            kind = "class" if subsystem in ("block", "mmc_host", "scsi_host") else "bus"
            target = self.root / kind / subsystem
            target.mkdir(parents=True, exist_ok=True)
            link = directory / "subsystem"
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(target, directory))
        for key, value in attributes.items():
            (directory / key).write_text(value + "\n")
        return directory

    def usb_chain(self, scsi_path: str = USB_DISK, *, port_removable: str = "removable", vendor: str = "Generic ",
                  model: str = "STORAGE DEVICE  ", scsi_type: str = "0") -> str:
        """pci host -> root hub -> usb_device 1-3 -> interface -> scsi host/target/device: a USB reader's disk."""
        parts = scsi_path.split("/")
        self.node("/".join(parts[:2]), "pci")
        self.node("/".join(parts[:3]), "usb")
        self.node("/".join(parts[:4]), "usb", removable=port_removable)
        self.node("/".join(parts[:5]), "usb")
        self.node("/".join(parts[:6]), "scsi")
        self.node("/".join(parts[:7]), "scsi")
        self.node(scsi_path, "scsi", vendor=vendor, model=model, type=scsi_type)
        return scsi_path

    def disk(self, name: str, parent: str, *, sectors: int = CARD_SECTORS, removable: str = "0", ro: str = "0",
             dev: str | None = None, link_device: bool = True) -> Path:
        """A whole disk at `parent`/block/`name`, its `device` link to `parent`, and /sys/class/block/`name`."""
        if dev is None:
            dev = f"8:{self.next_minor}"
            self.next_minor += 16
        directory = self.node(f"{parent}/block/{name}", "block", size=str(sectors), removable=removable, ro=ro,
                              dev=self.devnum(dev))
        (directory / "queue").mkdir()
        (directory / "queue" / "rotational").write_text("0\n")
        (directory / "holders").mkdir()
        (directory / "slaves").mkdir()
        if link_device:
            (directory / "device").symlink_to(os.path.relpath(self.root / "devices" / parent, directory))
        self._class_link(name, directory)
        return directory

    def partition(self, disk: str, number: int, *, sectors: int = 1000000, dev: str | None = None,
                  deliberate: bool = False) -> Path:
        disk_dir = (self.class_block / disk).resolve()
        major, minor = (disk_dir / "dev").read_text().strip().split(":")
        name = f"{disk}{'p' if disk[-1].isdigit() else ''}{number}"
        directory = disk_dir / name
        directory.mkdir()
        for key, value in {"partition": str(number), "size": str(sectors), "ro": "0",
                           "dev": self.devnum(dev or f"{major}:{int(minor) + number}", deliberate=deliberate)}.items():
            (directory / key).write_text(value + "\n")
        (directory / "holders").mkdir()
        self._class_link(name, directory)
        return directory

    def virtual(self, name: str, *, sectors: int = 0, dev: str = "7:0", **attributes: str) -> Path:
        directory = self.node(f"virtual/block/{name}", "block", size=str(sectors), removable="0", ro="0",
                              dev=self.devnum(dev))
        for sub in ("holders", "slaves", "queue"):
            (directory / sub).mkdir()
        for key, value in attributes.items():
            (directory / key).parent.mkdir(parents=True, exist_ok=True)
            (directory / key).write_text(value + "\n")
        self._class_link(name, directory)
        return directory

    def stack(self, holder: str, on: str) -> None:
        """`holder` (a dm device) on `on`: holders/ and slaves/ link each other as the kernel links them."""
        below, above = (self.class_block / on).resolve(), (self.class_block / holder).resolve()
        (below / "holders" / holder).symlink_to(os.path.relpath(above, below / "holders"))
        (above / "slaves" / on).symlink_to(os.path.relpath(below, above / "slaves"))

    def mount(self, devnum: str, source: str, mountpoint: str, fstype: str = "vfat") -> None:
        with self.mountinfo.open("a") as out:
            out.write(f"99 27 {devnum} / {mountpoint} rw,nosuid,nodev,relatime shared:1 - {fstype} {source} rw\n")

    def swap(self, source: str) -> None:
        with self.swaps.open("a") as out:
            out.write(f"{source}                               partition\t1048572\t\t0\t\t-2\n")

    def _class_link(self, name: str, directory: Path) -> None:
        (self.class_block / name).symlink_to(os.path.relpath(directory, self.class_block))


@pytest.fixture
def sys_tree(tmp_path: Path) -> FakeSys:
    return FakeSys(tmp_path)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "talos-arm64.raw"
    path.write_bytes(b"\0" * 4096)
    return path


def card(sys_tree: FakeSys, **kwargs: str | int) -> None:
    """A USB card reader / SD mux disk sdb holding a 16 GB card with two partitions."""
    chain = sys_tree.usb_chain()
    sys_tree.disk("sdb", chain, removable="1", **kwargs)  # type: ignore[arg-type]
    sys_tree.partition("sdb", 1)
    sys_tree.partition("sdb", 2)


def refusal(facts_node: str, sys_tree: FakeSys, image: Path, *, kind: type[Exception], image_size: int = GB,
            allow_loop: bool = False, root_device: str | None = None) -> str:
    facts = read_block_target(facts_node, sys_tree.sources(root_device))
    with pytest.raises(kind) as caught:
        check_target(facts, image_size=image_size, image_path=image, allow_loop=allow_loop)
    message = str(caught.value)
    assert message.startswith(f"refusing to write {facts.node} ({human_size(facts.size_bytes)}, "
                              f"{facts.model_text}):"), message
    return message


# -- the facts --------------------------------------------------------------------------------------
def test_a_usb_card_reads_as_a_hotplug_removable_disk_with_its_partitions(sys_tree: FakeSys) -> None:
    card(sys_tree)
    facts = read_block_target("/dev/sdb", sys_tree.sources())
    assert (facts.name, facts.devnum, facts.size_bytes) == ("sdb", "8:16", CARD_SECTORS * 512)
    assert facts.removable and facts.hotplug and not facts.read_only and facts.rotational is False
    assert (facts.vendor, facts.model, facts.model_text) == ("Generic", "STORAGE DEVICE", "Generic STORAGE DEVICE")
    assert facts.partitions == ("sdb1", "sdb2") and facts.kind == "disk" and not facts.is_partition
    assert facts.subsystems == ("scsi", "usb", "pci")
    assert facts.mounts == () and facts.swaps == () and facts.holders == ()


def test_the_pass_case_and_the_line_shown_before_writing(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    facts = checked_target("/dev/sdb", image_size=GB, image_path=image, sources=sys_tree.sources())
    assert describe(facts) == "/dev/sdb, 15.9 GB, Generic STORAGE DEVICE (scsi, removable)"


def test_a_disk_over_128_gb_is_questioned_in_the_line(sys_tree: FakeSys, image: Path) -> None:
    sys_tree.disk("sdb", sys_tree.usb_chain(), removable="1", sectors=500 * GB // 512)
    facts = checked_target("sdb", image_size=GB, image_path=image, sources=sys_tree.sources())
    assert describe(facts).endswith("500.0 GB, Generic STORAGE DEVICE (scsi, removable); larger than 128.0 GB: "
                                    "is this really the board's card?")


def test_mountinfo_octal_escapes_are_decoded(sys_tree: FakeSys) -> None:
    sys_tree.mount("8:17", "/dev/sdb1", "/media/bench/BOOT\\040CARD")
    assert read_mounts(sys_tree.mountinfo)[-1].mountpoint == "/media/bench/BOOT CARD"


def test_an_absent_device_is_a_bench_error_and_a_regular_file_a_config_error(sys_tree: FakeSys, image: Path) -> None:
    with pytest.raises(BenchError, match=r"/dev/sdz: no such block device in .*SD mux is not switched to the host"):
        read_block_target("/dev/sdz", sys_tree.sources())
    with pytest.raises(ConfigError, match="is not a block device"):
        read_block_target(str(image), sys_tree.sources())


# -- what the device is: WrongTarget (ConfigError) ------------------------------------------------
def test_a_non_removable_non_hotplug_disk_is_a_system_disk(sys_tree: FakeSys, image: Path) -> None:
    sata = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
    sys_tree.node("pci0000:00/0000:00:17.0", "pci")
    sys_tree.node(sata, "scsi", vendor="ATA     ", model="Samsung SSD 870 ")
    sys_tree.disk("sda", sata, sectors=1000215216, dev="8:0")
    message = refusal("/dev/sda", sys_tree, image, kind=WrongTarget)
    assert "/dev/sda (512.1 GB, ATA Samsung SSD 870)" in message
    assert "neither removable nor hotplug" in message and "a system disk of this host" in message


def test_a_usb_disk_is_hotplug_even_when_it_says_not_removable(sys_tree: FakeSys, image: Path) -> None:
    """Many USB card readers and SD muxes report removable 0; lsblk counts anything behind USB as hotplug."""
    sys_tree.disk("sdb", sys_tree.usb_chain(port_removable="fixed"), removable="0")
    facts = read_block_target("sdb", sys_tree.sources())
    assert facts.hotplug and not facts.removable
    check_target(facts, image_size=GB, image_path=image)


def test_an_ancestor_that_says_removable_makes_the_disk_hotplug(sys_tree: FakeSys, image: Path) -> None:
    bay = "pci0000:00/0000:00:1c.0/0000:05:00.0/host3/target3:0:0/3:0:0:0"
    sys_tree.node("pci0000:00/0000:00:1c.0", "pci")
    sys_tree.node("pci0000:00/0000:00:1c.0/0000:05:00.0", "pci", removable="removable")
    sys_tree.node(bay, "scsi", model="Thunderbolt Dock")
    sys_tree.disk("sdc", bay)
    check_target(read_block_target("sdc", sys_tree.sources()), image_size=GB, image_path=image)
    sys_tree.node("pci0000:00/0000:00:1c.0/0000:05:00.0", removable="fixed")
    refusal("sdc", sys_tree, image, kind=WrongTarget)


def test_an_sd_card_in_a_slot_passes_and_an_emmc_is_a_system_disk(sys_tree: FakeSys, image: Path) -> None:
    """The kernel never sets `removable` on mmcblk; the mmc card's `type` tells a card (SD) from soldered eMMC."""
    sys_tree.node("pci0000:00/0000:00:1e.6", "pci")
    sys_tree.node("pci0000:00/0000:00:1e.6/mmc_host/mmc0", "mmc_host")
    sys_tree.node("pci0000:00/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa", "mmc", type="SD", name="SC16G")
    sys_tree.disk("mmcblk0", "pci0000:00/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa", dev="179:0")
    sys_tree.partition("mmcblk0", 1)
    facts = read_block_target("/dev/mmcblk0", sys_tree.sources())
    assert facts.partitions == ("mmcblk0p1",) and facts.model == "SC16G" and "mmc" in facts.subsystems
    check_target(facts, image_size=GB, image_path=image)
    sys_tree.node("fe2e0000.mmc", "platform")
    sys_tree.node("fe2e0000.mmc/mmc_host/mmc1", "mmc_host")
    sys_tree.node("fe2e0000.mmc/mmc_host/mmc1/mmc1:0001", "mmc", type="MMC", name="A3A551")
    sys_tree.disk("mmcblk1", "fe2e0000.mmc/mmc_host/mmc1/mmc1:0001", dev="179:32")
    assert "a system disk" in refusal("/dev/mmcblk1", sys_tree, image, kind=WrongTarget)


@pytest.mark.parametrize("root", [None, "sdb2", "/dev/sdb2", "8:18"])
def test_the_disk_holding_root_is_refused(sys_tree: FakeSys, image: Path, root: str | None) -> None:
    card(sys_tree)
    sys_tree.mount("8:18", "/dev/sdb2", "/", "ext4")
    message = refusal("/dev/sdb", sys_tree, image, kind=WrongTarget, root_device=root)
    assert "it holds / (this host's root filesystem)" in message


def test_root_on_btrfs_or_lvm_is_traced_to_its_disk(sys_tree: FakeSys, image: Path) -> None:
    """btrfs mounts show 0:N in mountinfo, so the source names the device; dm is followed through slaves."""
    card(sys_tree)
    sys_tree.virtual("dm-0", sectors=100, dev="253:0", **{"dm/name": "vg-root"})
    sys_tree.stack("dm-0", "sdb2")
    sys_tree.mount("0:31", "/dev/mapper/vg-root", "/", "btrfs")
    assert underlying_disks(sys_tree.sources(), "0:31") == frozenset({"sdb"})
    assert read_block_target("sdb", sys_tree.sources()).root_disks == frozenset({"sdb"})
    assert "it holds /" in refusal("sdb", sys_tree, image, kind=WrongTarget)


def test_a_root_on_no_device_refuses_nothing_for_it(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    sys_tree.mount("0:40", "overlay", "/", "overlay")
    facts = read_block_target("sdb", sys_tree.sources())
    assert facts.root_disks == frozenset()
    check_target(facts, image_size=GB, image_path=image)


def test_the_disk_holding_the_image_itself_is_refused(sys_tree: FakeSys, image: Path) -> None:
    dev = os.stat(image).st_dev
    sys_tree.disk("sdb", sys_tree.usb_chain(), removable="1")
    sys_tree.partition("sdb", 1, dev=f"{os.major(dev)}:{os.minor(dev)}", deliberate=True)
    message = refusal("/dev/sdb", sys_tree, image, kind=WrongTarget)
    assert f"it holds the image file {image} itself" in message


def test_a_missing_image_is_a_config_error(sys_tree: FakeSys, tmp_path: Path) -> None:
    card(sys_tree)
    facts = read_block_target("sdb", sys_tree.sources())
    with pytest.raises(ConfigError, match=r"the image .*nothing\.raw does not exist"):
        check_target(facts, image_size=GB, image_path=tmp_path / "nothing.raw")


def test_a_partition_is_refused_naming_its_disk(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    facts = read_block_target("/dev/sdb1", sys_tree.sources())
    assert facts.is_partition and facts.parent_disk == "sdb" and facts.hotplug and facts.removable
    message = refusal("/dev/sdb1", sys_tree, image, kind=WrongTarget)
    assert "it is a partition of /dev/sdb, not a whole disk" in message and "DEVTYPE=disk" in message


@pytest.mark.parametrize(("name", "said"), [("ram0", "RAM disk (ram)"), ("zram0", "RAM disk (zram)"),
                                            ("dm-3", "virtual device (device-mapper, md, nbd)")])
def test_ram_zram_and_virtual_devices_are_refused(sys_tree: FakeSys, image: Path, name: str, said: str) -> None:
    sys_tree.virtual(name, sectors=CARD_SECTORS, dev="1:0")
    message = refusal(f"/dev/{name}", sys_tree, image, kind=WrongTarget)
    assert said in message and "system disk" not in message


def test_an_optical_drive_is_refused(sys_tree: FakeSys, image: Path) -> None:
    chain = sys_tree.usb_chain(model="DVD-RW", scsi_type="5")
    sys_tree.disk("sr0", chain, removable="1", dev="11:0")
    assert "it is an optical drive" in refusal("/dev/sr0", sys_tree, image, kind=WrongTarget)


def test_a_loop_device_only_where_the_bench_allows_one(sys_tree: FakeSys, image: Path, tmp_path: Path) -> None:
    backing = tmp_path / "medium.img"
    sys_tree.virtual("loop0", sectors=CARD_SECTORS, **{"loop/backing_file": str(backing)})
    message = refusal("/dev/loop0", sys_tree, image, kind=WrongTarget)
    assert f"it is a loop device onto {backing}: a loop device is a target only where the bench" in message
    assert "system disk" not in message
    check_target(read_block_target("/dev/loop0", sys_tree.sources()), image_size=GB, image_path=image,
                 allow_loop=True)


def test_a_loop_device_onto_the_image_itself_is_refused_even_when_allowed(sys_tree: FakeSys, image: Path) -> None:
    sys_tree.virtual("loop1", sectors=CARD_SECTORS, dev="7:1", **{"loop/backing_file": str(image)})
    message = refusal("/dev/loop1", sys_tree, image, kind=WrongTarget, allow_loop=True)
    assert f"it is a loop device onto the image file {image} itself" in message


# -- what state it is in: UnsafeTarget (BenchError) -----------------------------------------------
def test_no_medium_says_to_wait(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree, sectors=0)
    message = refusal("/dev/sdb", sys_tree, image, kind=UnsafeTarget)
    assert "(0 B, Generic STORAGE DEVICE)" in message
    assert "it reports no medium (size 0): a card reader reports size 0 until the card is ready" in message
    assert "wait_for_medium" in message and "smaller than the image" not in message


def test_an_unattached_loop_device_says_so(sys_tree: FakeSys, image: Path) -> None:
    sys_tree.virtual("loop2", sectors=0, dev="7:2")
    message = refusal("/dev/loop2", sys_tree, image, kind=UnsafeTarget, allow_loop=True)
    assert "attached to no file" in message


def test_a_read_only_card_is_refused(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree, ro="1")
    assert "it is read-only: slide the SD adapter's lock switch" in refusal("sdb", sys_tree, image, kind=UnsafeTarget)


def test_a_card_smaller_than_the_image_is_refused(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree, sectors=2 * 1000**3 // 512)
    message = refusal("sdb", sys_tree, image, kind=UnsafeTarget, image_size=4 * GB)
    assert "it is smaller than the image (2.0 GB < 4.0 GB, 4000000000 bytes): use a larger card" in message
    check_target(read_block_target("sdb", sys_tree.sources()), image_size=2 * GB, image_path=image)


def test_a_mounted_partition_is_refused_naming_where(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    sys_tree.mount("8:17", "/dev/sdb1", "/media/bench/BOOT")
    facts = read_block_target("sdb", sys_tree.sources())
    assert [m.mountpoint for m in facts.mounts] == ["/media/bench/BOOT"]
    message = refusal("sdb", sys_tree, image, kind=UnsafeTarget)
    assert "it is mounted (/dev/sdb1 on /media/bench/BOOT): unmount it (`umount /media/bench/BOOT`)" in message


def test_a_mount_found_by_its_device_number_when_the_source_is_a_link(sys_tree: FakeSys, image: Path) -> None:
    """A mount of /dev/disk/by-uuid/... names no kernel device in the source; the device number does."""
    card(sys_tree)
    sys_tree.mount("8:18", "/dev/disk/by-uuid/0c3e-51d2", "/media/bench/STATE")
    message = refusal("sdb", sys_tree, image, kind=UnsafeTarget)
    assert "it is mounted (/dev/disk/by-uuid/0c3e-51d2 on /media/bench/STATE)" in message


def test_a_mount_found_by_its_source_when_mountinfo_shows_no_device_number(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    sys_tree.mount("0:45", "/dev/sdb2", "/mnt/state", "btrfs")
    assert "it is mounted (/dev/sdb2 on /mnt/state)" in refusal("sdb", sys_tree, image, kind=UnsafeTarget)


def test_a_partition_in_use_as_swap_is_refused(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    sys_tree.swap("/dev/sdb2")
    assert "it is in use as swap (/dev/sdb2): `swapoff /dev/sdb2`" in refusal("sdb", sys_tree, image,
                                                                                kind=UnsafeTarget)


def test_a_held_disk_is_refused_and_a_mount_of_its_holder_counts(sys_tree: FakeSys, image: Path) -> None:
    card(sys_tree)
    sys_tree.virtual("dm-0", sectors=100, dev="253:1", **{"dm/name": "cardcrypt"})
    sys_tree.stack("dm-0", "sdb1")
    message = refusal("sdb", sys_tree, image, kind=UnsafeTarget)
    assert "it is held by dm-0 (device-mapper, LVM or md stacked on it)" in message and "mounted" not in message
    sys_tree.mount("0:50", "/dev/mapper/cardcrypt", "/media/secret", "ext4")
    assert "it is mounted (/dev/mapper/cardcrypt on /media/secret)" in refusal("sdb", sys_tree, image,
                                                                                kind=UnsafeTarget)


def test_every_reason_is_reported_at_once_and_the_wrong_device_wins(sys_tree: FakeSys, image: Path) -> None:
    sata = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
    sys_tree.node("pci0000:00/0000:00:17.0", "pci")
    sys_tree.node(sata, "scsi", vendor="ATA", model="WDC WD40")
    sys_tree.disk("sda", sata, sectors=8 * 10**9, dev="8:0")
    sys_tree.partition("sda", 1)
    sys_tree.mount("8:1", "/dev/sda1", "/home", "ext4")
    facts = read_block_target("sda", sys_tree.sources())
    with pytest.raises(WrongTarget) as caught:
        check_target(facts, image_size=GB, image_path=image)
    assert len(caught.value.reasons) == 2
    assert "system disk" in caught.value.reasons[0] and "/dev/sda1 on /home" in caught.value.reasons[1]


# -- O_EXCL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "said"), [
    (errno.EBUSY, "is busy (EBUSY): it is mounted, in use as swap, held by"),
    (errno.ENOENT, "is gone (ENOENT): the reader or SD mux was unplugged"),
    (errno.ENOMEDIUM, "has no medium (ENOMEDIUM)"),
    (errno.EROFS, "is read-only (EROFS)"),
    (errno.EACCES, "permission denied opening it for writing"),
    (errno.EIO, "cannot open it for writing: Input/output error"),
])
def test_open_errors_become_bench_errors_naming_the_device(code: int, said: str) -> None:
    seen: list[int] = []

    def opener(path: str, flags: int) -> int:
        seen.append(flags)
        raise OSError(code, os.strerror(code), path)

    with pytest.raises(BenchError) as caught:
        open_exclusive("/dev/sdb", flags=os.O_SYNC, opener=opener)
    assert str(caught.value).startswith("/dev/sdb") and said in str(caught.value)
    assert seen[0] & os.O_EXCL and seen[0] & os.O_ACCMODE == os.O_WRONLY and seen[0] & os.O_SYNC
    with pytest.raises(BenchError):
        open_exclusive("/dev/sdb", readable=True, opener=opener)
    assert seen[1] & os.O_ACCMODE == os.O_RDWR and seen[1] & os.O_EXCL


def test_a_regular_file_is_not_opened_as_a_block_device(image: Path) -> None:
    with pytest.raises(BenchError, match="is not a block device: O_EXCL protects only block devices"):
        open_exclusive(str(image))


@dataclass
class LoopDevice:
    node: str
    backing: Path


@pytest.fixture
def loop_device(tmp_path: Path):
    """A real loop device onto a 4 MB file (the tests run as root where losetup works)."""
    # Only the real-device check needs this; the errno mapping it also covers is tested with a fake opener.
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup for a real loop device")
    backing = tmp_path / "medium.img"
    backing.write_bytes(b"\0" * (4 << 20))
    done = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"losetup cannot attach here: {done.stderr.strip()}")
    node = done.stdout.strip()
    try:
        yield LoopDevice(node, backing)
    finally:
        subprocess.run(["losetup", "--detach", node], check=False)


def test_a_real_loop_device_is_checked_and_opened_exclusively_once(loop_device: LoopDevice, image: Path) -> None:
    facts = read_block_target(loop_device.node)
    assert facts.kind == "loop" and facts.size_bytes == 4 << 20 and facts.backing_file == str(loop_device.backing)
    with pytest.raises(WrongTarget, match="a loop device is a target only where the bench explicitly allows"):
        check_target(facts, image_size=4096, image_path=image)
    check_target(facts, image_size=4096, image_path=image, allow_loop=True)
    fd = open_exclusive(loop_device.node)
    try:
        with pytest.raises(BenchError, match=rf"^{loop_device.node} is busy \(EBUSY\)"):
            open_exclusive(loop_device.node)
    finally:
        os.close(fd)
    fd = open_exclusive(loop_device.node, readable=True)
    try:
        os.pwrite(fd, b"written", 512)
        assert os.pread(fd, 7, 512) == b"written"
    finally:
        os.close(fd)


# -- waiting for the medium -----------------------------------------------------------------------
def test_wait_for_medium_returns_the_size_once_the_card_is_ready(sys_tree: FakeSys) -> None:
    card(sys_tree, sectors=0)
    size_file = sys_tree.class_block / "sdb" / "size"
    timer = threading.Timer(0.3, lambda: size_file.write_text(f"{CARD_SECTORS}\n"))
    timer.start()
    started = time.monotonic()
    try:
        assert wait_for_medium("/dev/sdb", 5, sources=sys_tree.sources(), interval=0.05) == CARD_SECTORS * 512
    finally:
        timer.cancel()
    assert 0.25 < time.monotonic() - started < 3


def test_wait_for_medium_waits_for_the_device_to_appear(sys_tree: FakeSys) -> None:
    timer = threading.Timer(0.2, lambda: card(sys_tree))
    timer.start()
    try:
        assert wait_for_medium("sdb", 5, sources=sys_tree.sources(), interval=0.05) == CARD_SECTORS * 512
    finally:
        timer.join()


def test_wait_for_medium_gives_up_saying_what_it_saw(sys_tree: FakeSys) -> None:
    card(sys_tree, sectors=0)
    with pytest.raises(BenchError, match=r"/dev/sdb reported size 0 for 0.3 s: no medium"):
        wait_for_medium("sdb", 0.3, sources=sys_tree.sources(), interval=0.05)
    with pytest.raises(BenchError, match=r"/dev/sdx did not appear for 0.1 s"):
        wait_for_medium("sdx", 0.1, sources=sys_tree.sources(), interval=0.05)


# -- naming the target ----------------------------------------------------------------------------
@dataclass
class Dev:
    """The part of a pyudev.Device the udev lookup reads."""

    sys_name: str
    subsystem: str
    parent: Dev | None = None
    device_type: str | None = None
    device_node: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Context:
    devices: list[Dev]

    def list_devices(self, subsystem: str) -> list[Dev]:
        return [d for d in self.devices if d.subsystem == subsystem]


def sd_mux(port: str, letter: str) -> list[Dev]:
    """A USB-SD-Mux (0424:4041) on USB port `port`: its card disk and the card's two partitions."""
    usb = Dev(f"1-{port}", "usb", Dev("0000:00:14.0", "pci"), "usb_device",
              attributes={"idVendor": b"0424", "idProduct": b"4041", "serial": f"00012{port}".encode()})
    scsi = Dev("6:0:0:0", "scsi", Dev(f"1-{port}:1.0", "usb", usb, "usb_interface"))
    path = f"pci-0000:00:14.0-usb-0:{port}:1.0-scsi-0:0:0:0"
    disk = Dev(f"sd{letter}", "block", scsi, "disk", f"/dev/sd{letter}",
               {"DEVTYPE": "disk", "ID_PATH": path, "ID_SERIAL_SHORT": f"00012{port}"})
    return [disk, *(Dev(f"sd{letter}{n}", "block", disk, "partition", f"/dev/sd{letter}{n}",
                        {"DEVTYPE": "partition", "ID_PATH": path, "ID_SERIAL_SHORT": f"00012{port}"})
                    for n in (1, 2))]


def test_the_target_is_the_disk_the_udev_identity_names_not_its_partitions() -> None:
    context = Context([*sd_mux("3", "b"), *sd_mux("4", "c")])
    assert resolve_block_target({"ID_SERIAL_SHORT": "000124"}, None, allow_path=False, context=context) == "/dev/sdc"
    path = "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0"
    assert resolve_block_target({"ID_PATH": path}, None, allow_path=False, context=context) == "/dev/sdb"
    with pytest.raises(BenchError, match=r"the bench's flash target .* matches 2 block devices"):
        resolve_block_target({"ID_VENDOR_ID": "0424"}, None, allow_path=False, context=context)
    with pytest.raises(BenchError, match="no block device is present with that identity"):
        resolve_block_target({"ID_SERIAL_SHORT": "nope"}, None, allow_path=False, context=context)


def test_a_bare_path_is_refused_unless_the_bench_allows_one() -> None:
    with pytest.raises(ConfigError, match=r"a bare path \(/dev/sdb\) can name another disk after a replug"):
        resolve_block_target(None, "/dev/sdb", allow_path=False)
    assert resolve_block_target(None, "/dev/loop3", allow_path=True) == "/dev/loop3"
    with pytest.raises(ConfigError, match="exactly one of a device path or udev properties"):
        resolve_block_target(None, None, allow_path=True)
    with pytest.raises(ConfigError, match="exactly one of a device path or udev properties"):
        resolve_block_target({"ID_PATH": "x"}, "/dev/sdb", allow_path=True)
