"""`python -m measure.cli`: the `measure` command."""

from __future__ import annotations

from measure.cli.app import main

main()
