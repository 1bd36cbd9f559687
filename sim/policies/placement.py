"""Where a request's instances go: least loaded, power of two choices, or packing.

Load is whatever the policy counts per node (in flight + planned + its own queue); ties go to
the lowest node id so that placements are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Placement = Literal["least_loaded", "power_of_two", "packing"]
Load = Sequence[float] | np.ndarray


def least_loaded(load: Load) -> int:
    """Node with the smallest load (lowest id among equals)."""
    return int(np.argmin(np.asarray(load, dtype=float)))


def power_of_two(load: Load, rng: np.random.Generator) -> int:
    """Two distinct nodes drawn at random; the less loaded one (the first drawn among equals)."""
    if len(load) == 1:
        return 0
    a, b = (int(x) for x in rng.choice(len(load), size=2, replace=False))
    return b if load[b] < load[a] else a


def packing(load: Load, count: int, capacity: float) -> int:
    """First node (by id) where `count` more fits under `capacity`; least loaded if none fits.

    Filling nodes in order keeps the others idle for large requests (first fit).
    """
    fits = np.flatnonzero(np.asarray(load, dtype=float) + count <= capacity)
    return int(fits[0]) if fits.size else least_loaded(load)


def place(
    placement: Placement,
    load: Load,
    count: int,
    rng: np.random.Generator,
    capacity: float,
) -> int:
    """Dispatch to the named placement rule."""
    if placement == "least_loaded":
        return least_loaded(load)
    if placement == "power_of_two":
        return power_of_two(load, rng)
    return packing(load, count, capacity)


def even_split(count: int, parts: int) -> list[int]:
    """`count` instances in `parts` shares differing by at most one, larger shares first."""
    base, extra = divmod(count, parts)
    return [base + 1 if i < extra else base for i in range(parts)]
