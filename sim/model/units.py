"""Milliseconds and seconds: users state intervals in ms, the model and the records count seconds.

The one conversion, so that every site rounds the same way (x / 1000, never x * 1e-3).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

MS_PER_S = 1000.0
"""Milliseconds in a second."""

Time = TypeVar("Time", float, np.ndarray)


def seconds(ms: Time) -> Time:
    """Milliseconds to seconds (a float or an array)."""
    return ms / MS_PER_S


def milliseconds(s: Time) -> Time:
    """Seconds to milliseconds (a float or an array)."""
    return s * MS_PER_S
