"""sim/sweep."""

from __future__ import annotations
