"""A QEMU arm64 board running firmware and a kernel nobody here wrote: Debian's U-Boot and Linux.

The simulated boards replay transcripts the harness's authors typed; this board exists so the
harness also meets real U-Boot prompts, real kernel logs and a real shell, with their timing
and quirks, on any machine with QEMU.
"""
