"""Console entry points: a user's mistake is one line on stderr and exit status 2, never a
traceback; Ctrl-C is exit 130. Shared by the `sim` and `measure` commands."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from sim.errors import UserError

try:  # typer >= 0.20 vendors click; older ones use the click package
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]


def run_app(app: typer.Typer,
            handlers: dict[type[BaseException], Callable[[BaseException], int]] | None = None,
            ) -> None:
    """Run a typer app and turn errors into exit codes. `handlers` maps further exception types
    to a function that reports them and returns the exit code."""
    try:
        rv = app(standalone_mode=False)
    except _cx.NoArgsIsHelpError as err:
        print(err.ctx.get_help() if err.ctx else str(err))
        sys.exit(2)
    except _cx.UsageError as err:
        hint = ""
        if err.ctx is not None:
            hint = f"; see `{err.ctx.command_path} --help`"
        print(f"error: {err.format_message()}{hint}", file=sys.stderr)
        sys.exit(2)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BaseException as err:
        for kind, handle in (handlers or {}).items():
            if isinstance(err, kind):
                sys.exit(handle(err))
        raise
    sys.exit(rv if isinstance(rv, int) else 0)
