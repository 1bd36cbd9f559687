"""Errors a user can fix, shared by the `sim` and `measure` commands.

The CLIs print them as one line on stderr and exit with status 2 (sim.entry.run_app).
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad option, bad file, unusable host).

    The message says what is wrong and how to fix it, in one line.
    """
