"""`python -m measure.cli`: the `measure` command."""

from __future__ import annotations

from measure.cli.main import main

main()
