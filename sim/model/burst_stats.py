"""Figures of one burst's ready times (first, median, p95, all-ready, any quantile): the one
definition that `measure burst`, `measure plot`, predict, validate and calibrate all share.

Quantiles are numpy's default definition, "linear" (Hyndman and Fan type 7): the value at
virtual index q * (n - 1) of the sorted sample, interpolated linearly between its neighbours. The
median is that quantile at 1/2 (for an even count, the mean of the two middle values: [1, 2, 3,
4] gives 2.5). Every function takes one burst as a 1-d array, or several (say, one per work draw)
as the rows of a 2-d array, and then answers per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

QUANTILE_METHOD: Final = "linear"
"""numpy's default quantile definition, named so no site can drift to another."""
P10: Final = 0.1
"""The quantile of p10_ready_s: until 10 % of a burst's instances are ready."""


def quantile(ready: np.ndarray | Sequence[float], q: Any) -> Any:
    """Quantile(s) `q` of the ready times, along the last axis (linear interpolation)."""
    return np.quantile(np.asarray(ready, dtype=float), q, axis=-1, method=QUANTILE_METHOD)


def quantile_ranks(count: int, q: float) -> tuple[int, int, float]:
    """Where the quantile q of `count` values lies: the ranks (0-based, ascending) of the two
    order statistics it interpolates between, and the weight of the upper one."""
    index = (count - 1) * q
    lower = math.floor(index)
    return lower, min(lower + 1, count - 1), index - lower


def interpolate(lower: float, upper: float, weight: float) -> float:
    """The quantile from its two order statistics (quantile_ranks): numpy's linear
    interpolation operation for operation, so that it equals `quantile` bit for bit (the
    tests check it). For the engine, which sees a request's ready times one by one in order
    and keeps only the earliest: `quantile` of a few values costs more than a launch."""
    step = upper - lower
    return upper - step * (1 - weight) if weight >= 0.5 else lower + step * weight


def median(ready: np.ndarray | Sequence[float]) -> Any:
    """The linear quantile at 1/2 along the last axis. numpy's median computes exactly that
    (the mean of the two middle values for an even count) and is kept for its rounding, which
    predictions and validations have always used."""
    return np.median(ready, axis=-1)


def first_ready(ready: np.ndarray | Sequence[float]) -> Any:
    """The earliest ready time along the last axis."""
    return np.min(ready, axis=-1)


def last_ready(ready: np.ndarray | Sequence[float]) -> Any:
    """The latest ready time along the last axis (the all-ready time when every instance of
    the burst became ready; the caller decides that, it cannot be seen from ready times)."""
    return np.max(ready, axis=-1)


def burst_figures(ready: np.ndarray | Sequence[float], everyone_ready: bool = True,
                  ) -> dict[str, float | None]:
    """first, median, p95 and all-ready seconds of one burst's ready times (those of the
    instances that became ready). None where there is no ready instance; all_ready_s is None
    too when `everyone_ready` is false (some instance never became ready)."""
    x = np.asarray(ready, dtype=float)
    if x.size == 0:
        return {"first_ready_s": None, "median_ready_s": None, "p95_ready_s": None,
                "all_ready_s": None}
    return {
        "first_ready_s": float(first_ready(x)),
        "median_ready_s": float(median(x)),
        "p95_ready_s": float(quantile(x, 0.95)),
        "all_ready_s": float(last_ready(x)) if everyone_ready else None,
    }
