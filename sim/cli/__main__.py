"""`python -m sim.cli`: the `sim` command."""

from __future__ import annotations

from sim.cli import main

main()
