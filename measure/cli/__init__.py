"""The `measure` command (measure/cli/main.py); `main` is the console script's entry point."""

from __future__ import annotations


def main() -> None:
    """Run the `measure` command. Its module is imported only here, so that `python -m
    measure.cli.main` does not find it already imported by this package (runpy warns then)."""
    from measure.cli.main import main as run_measure

    run_measure()
