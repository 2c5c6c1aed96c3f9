"""Talos-side facts the gates check once the kernel has handed over to Talos.

Kept apart from `harness.parsers`, which reads the boot firmware: these modules speak to Talos
itself (its maintenance API) or read the lines Talos writes into the kernel log.
"""
