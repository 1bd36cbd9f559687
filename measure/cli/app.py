"""The `measure` command: real burst boots on this host, their figures, and model calibration.

Each group of commands is a typer app of its own (measure/cli/harness.py, calibrate.py), merged
into this one.
"""

from __future__ import annotations

import sys

import typer

from measure.cli import calibrate, harness, probe
from measure.harness.signals import BurstInterrupted
from sim.entry import run_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Real burst boots on this host, their figures, and model calibration.")
app.add_typer(harness.app)
app.add_typer(calibrate.app)
app.add_typer(probe.app)


def _interrupted(err: BaseException) -> int:
    print(f"terminated by {err}: every instance was stopped; rows measured so far are kept",
          file=sys.stderr)
    return 143


def main() -> None:
    """Entry point of the `measure` command."""
    run_app(app, {BurstInterrupted: _interrupted})


if __name__ == "__main__":
    main()
