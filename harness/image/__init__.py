"""Disk images as a board sees them: what a flashed card holds, and small stand-ins for tests."""
