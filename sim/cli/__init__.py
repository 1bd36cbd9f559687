"""The `sim` command: the command groups of this package (run and tune, schedule and validate,
sweep) composed into one typer app; `main` is the console script's entry point."""

from __future__ import annotations

import sys

import typer

from sim.cli import run, schedule, sweep
from sim.entry import run_app
from sim.files import ScenarioError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Simulate launch policies on a platform of "
                  "calibrated nodes: compare them (run), tune one (tune), sweep a scenario "
                  "(sweep), and check one against the real host (schedule, validate).")
for group in (run.app, schedule.app, sweep.app):
    app.add_typer(group)


def _report_scenario_error(error: BaseException) -> int:
    """A scenario's mistakes, one `file:line:col: path: message` line each; exit status 2."""
    assert isinstance(error, ScenarioError)
    for line in error.lines:
        print(line, file=sys.stderr)
    return 2


def main() -> None:
    """Entry point of the `sim` command: user mistakes exit 2 with one line, never a traceback."""
    run_app(app, {ScenarioError: _report_scenario_error})


__all__ = ["app", "main"]
