"""The roadmap's requirement ids, in the roadmap's order: the rows of the requirement matrix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    id: str
    phase: str
    criterion: str


REQUIREMENTS: tuple[Requirement, ...] = tuple(Requirement(*row) for row in (
    ("ENV-01", "environment", "the overlay repository builds with the bldr/kres toolchain"),
    ("ENV-02", "environment", "the UART console shows output at the board's baud after power-on"),
    ("ENV-03", "environment", "docker buildx produces arm64 artifacts"),
    ("ENV-04", "environment", "built artifacts can be flashed to the microSD"),
    ("BOOT-01", "bootloader", "the U-Boot prompt appears on the UART after power-on"),
    ("BOOT-02", "bootloader", "DDR init passes (LPDDR5 initialised correctly)"),
    ("BOOT-03", "bootloader", "U-Boot can read files from the microSD"),
    ("BOOT-REC", "bootloader", "the recovery procedure (MaskROM) is documented and tested"),
    ("BOOT-04", "kernel", "the Linux kernel boots to console"),
    ("KERN-01", "kernel", "Gigabit Ethernet appears"),
    ("KERN-02", "kernel", "eMMC is detected and accessible"),
    ("KERN-03", "kernel", "USB host ports enumerate connected devices"),
    ("KERN-04", "kernel", "the device tree identifies the board"),
    ("OVRL-01", "overlay", "the installer binary implements the overlay installer interface"),
    ("OVRL-02", "overlay", "the profile YAML passes the imager's validation"),
    ("OVRL-03", "overlay", "the overlay container image builds and is pushed to a registry"),
    ("OVRL-04", "overlay", "the generated image boots to Talos maintenance mode"),
    ("CLST-01", "cluster", "the board boots Talos from eMMC with no manual intervention"),
    ("CLST-02", "cluster", "network connectivity (reaches beyond the bench)"),
    ("CLST-03", "cluster", "the machine appears in Omni with the right name"),
    ("CLST-04", "cluster", "the node is Ready in Kubernetes"),
    ("CLST-05", "cluster", "a test pod scheduled on the node runs"),
    ("KERN-05", "hardening", "NVMe detected and usable"),
    ("KERN-06", "hardening", "CPU frequency scales with load"),
    ("KERN-07", "hardening", "thermal sensors report temperatures"),
    ("KERN-08", "hardening", "the hardware watchdog resets the board on a hang"),
))
