"""The straight-line baseline every physical calibration must beat on the same held-out folds.

first and all-ready, each by least squares: a + b*count + c*interval + d*count*interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from measure.calibration.data import Burst, ConfigKey


def _design(keys: Sequence[ConfigKey]) -> np.ndarray:
    count = np.array([key[0] for key in keys], dtype=float)
    interval = np.array([key[1] for key in keys], dtype=float)
    return np.column_stack([np.ones_like(count), count, interval, count * interval])


@dataclass(frozen=True)
class LinearBaseline:
    first_coef: np.ndarray
    all_coef: np.ndarray

    def predict(self, keys: Sequence[ConfigKey]) -> tuple[np.ndarray, np.ndarray]:
        """(first_ready, all_ready) for each configuration."""
        design = _design(keys)
        return design @ self.first_coef, design @ self.all_coef


def fit_baseline(bursts: Sequence[Burst]) -> LinearBaseline:
    """Ordinary least squares on every run; a rank-deficient design (one count or one interval)
    gets the minimum-norm solution, which is what extrapolating a line from one point can mean."""
    design = _design([burst.key for burst in bursts])
    first = np.array([burst.first_ready_s for burst in bursts])
    last = np.array([burst.all_ready_s for burst in bursts])
    first_coef = np.linalg.lstsq(design, first, rcond=None)[0]
    all_coef = np.linalg.lstsq(design, last, rcond=None)[0]
    return LinearBaseline(first_coef=first_coef, all_coef=all_coef)
