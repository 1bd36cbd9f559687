"""The `measure` command."""

from __future__ import annotations

from measure.cli.main import main

__all__ = ["main"]
