"""Named random-number streams: one numpy Generator per (stream, replication, seed).
Every source of randomness has its own stream, so policies see the same workload (common numbers).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Who draws from a stream; the value is part of the generator's seed, so never renumber."""

    ARRIVALS = 1
    """Request arrival times (and the hidden state of bursty arrivals)."""
    SIZES = 2
    """Instances per request."""
    TENANTS = 3
    """Which tenant sends each request."""
    WORK_SCALE = 4
    """Per-instance work multipliers when the workload sets a work distribution."""
    WORK = 5
    """Per-instance lognormal work noise drawn by the engine, per request in arrival order."""
    POLICY = 6
    """A policy's own random choices (power of two choices, ...)."""


def stream_rng(stream: Stream | int, replication: int, seed: int) -> np.random.Generator:
    """The generator of `stream` in replication `replication` of a study seeded with `seed`."""
    if replication < 0 or seed < 0:
        raise ValueError(f"replication and seed must be >= 0, got {replication} and {seed}")
    return np.random.default_rng([int(stream), replication, seed])
