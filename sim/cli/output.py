"""What the `sim` commands share on the terminal: the scenario argument and --json option, a
progress bar on stderr, wide tables, and JSON that stays valid (no NaN)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file (see scenarios/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only a JSON summary on stdout.")]

stderr = Console(stderr=True)
WIDTH = 120
"""Tables are laid out for at least this many columns, even when stdout is not a terminal."""


def wide_console() -> Console:
    return Console(width=max(Console().width, WIDTH))


@contextmanager
def progress_bar(description: str, total: int, *, transient: bool = False
                 ) -> Iterator[Progress]:
    """A progress bar with one task on stderr (never on stdout, which --json keeps for JSON).
    A transient bar vanishes when done and is drawn only on a terminal."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=stderr, transient=transient, disable=transient and not stderr.is_terminal,
    ) as progress:
        progress.add_task(description, total=total)
        yield progress


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
