"""Errors a user can fix: the one class both commands share (see sim/errors.py)."""

from __future__ import annotations

from sim.errors import UserError

__all__ = ["UserError"]
