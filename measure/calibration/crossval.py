"""Cross-validation folds by configuration: leave one count out, leave one interval out.

A fold holds out every run of the held-out configurations, so no replicate of them is trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from measure.calibration.data import Burst, ConfigKey

Scheme = Literal["leave_one_count_out", "leave_one_interval_out"]
SCHEMES: tuple[Scheme, ...] = ("leave_one_count_out", "leave_one_interval_out")


@dataclass(frozen=True)
class Fold:
    scheme: Scheme
    heldout_value: float
    """The count (or interval in ms) this fold holds out."""
    train: frozenset[ConfigKey]
    test: frozenset[ConfigKey]


def folds(keys: Sequence[ConfigKey], scheme: Scheme) -> list[Fold]:
    """One fold per distinct count (or interval); every configuration is tested exactly once."""
    axis = 0 if scheme == "leave_one_count_out" else 1
    values = sorted({key[axis] for key in keys})
    if len(values) < 2:
        return []
    result = []
    for value in values:
        test = frozenset(key for key in keys if key[axis] == value)
        train = frozenset(key for key in keys if key[axis] != value)
        result.append(Fold(scheme=scheme, heldout_value=float(value), train=train, test=test))
    return result


def runs_in(bursts: Sequence[Burst], keys: frozenset[ConfigKey]) -> list[Burst]:
    """The runs of the configurations `keys` (a fold's training or test side)."""
    return [burst for burst in bursts if burst.key in keys]
