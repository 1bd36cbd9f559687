"""The `measure` command (measure/cli/app.py); `main` is the console script's entry point."""

from __future__ import annotations


def main() -> None:
    """Run the `measure` command (its app is imported only when it runs)."""
    from measure.cli.app import main as run_measure

    run_measure()
