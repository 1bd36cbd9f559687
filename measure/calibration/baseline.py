"""The straight-line baseline every physical calibration must beat on the same held-out folds.

first and all-ready, each by least squares: a + b*count + c*interval + d*count*interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from measure.calibration.data import Burst, ConfigKey


def design(keys: Sequence[ConfigKey]) -> np.ndarray:
    """The line's terms of each configuration: 1, count, interval, count*interval."""
    count = np.array([key[0] for key in keys], dtype=float)
    interval = np.array([key[1] for key in keys], dtype=float)
    return np.column_stack([np.ones_like(count), count, interval, count * interval])


@dataclass(frozen=True)
class LinearBaseline:
    first_coef: np.ndarray
    all_coef: np.ndarray

    def predict(self, keys: Sequence[ConfigKey]) -> tuple[np.ndarray, np.ndarray]:
        """(first_ready, all_ready) for each configuration."""
        terms = design(keys)
        return terms @ self.first_coef, terms @ self.all_coef


def fit_line(keys: Sequence[ConfigKey], values: Sequence[float]) -> np.ndarray:
    """Least-squares coefficients of the line through (configuration, value) pairs (minimum
    norm when the design is rank-deficient)."""
    return np.linalg.lstsq(design(keys), np.asarray(values, dtype=float), rcond=None)[0]


def fit_baseline(bursts: Sequence[Burst]) -> LinearBaseline:
    """Ordinary least squares on every run; a rank-deficient design (one count or one interval)
    gets the minimum-norm solution, which is what extrapolating a line from one point can mean."""
    keys = [burst.key for burst in bursts]
    return LinearBaseline(first_coef=fit_line(keys, [burst.first_ready_s for burst in bursts]),
                          all_coef=fit_line(keys, [burst.all_ready_s for burst in bursts]))
