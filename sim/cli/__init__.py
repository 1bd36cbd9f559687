"""The `sim` command: the command groups of this package (run and tune, schedule,
sweep) composed into one typer app; `main` is the console script's entry point."""

from __future__ import annotations

import sys
from typing import Any

import typer

from sim.cli import run, schedule, sweep
from sim.entry import run_app
from sim.files import ScenarioError


class _SimApp(typer.Typer):
    """A scenario's mistakes are printed one `file:line:col: path: message` line each, exit
    status 2, whichever command finds them (loading the file, or a sweep axis in it)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ScenarioError as exc:
            for line in exc.lines:
                print(line, file=sys.stderr)
            return 2


app = _SimApp(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
              rich_markup_mode=None, help="Simulate launch policies on a platform of calibrated "
              "nodes: compare them (run), tune one (tune), sweep a scenario (sweep), and export "
              "one node's launches for the real host (schedule; `measure validate` compares).")
for group in (run.app, schedule.app, sweep.app):
    app.add_typer(group)


def main() -> None:
    """Entry point of the `sim` command: user mistakes exit 2 with one line (a scenario's, one
    line per mistake), never a traceback."""
    run_app(app)


__all__ = ["app", "main"]
