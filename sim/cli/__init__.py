"""The `sim` command."""

from __future__ import annotations

from sim.cli.run import main

__all__ = ["main"]
