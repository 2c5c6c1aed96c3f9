"""Bring-up: the stage strategy (stages), the boot capture (capture) and the session composing them
(harness/session.py), so a gate asks for a stage or a line and never counts power cycles."""
