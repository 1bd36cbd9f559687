"""The `sim` command (sim/cli/run.py); `main` is the console script's entry point."""

from __future__ import annotations


def main() -> None:
    """Run the `sim` command. Its module is imported only here, so that `python -m sim.cli.run`
    does not find it already imported by this package (runpy warns then)."""
    from sim.cli.run import main as run_sim

    run_sim()
