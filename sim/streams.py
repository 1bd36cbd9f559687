"""Named random-number streams, the one registry of every seeded generator in sim/ and measure/.
Every source of randomness has its own stream, so policies see the same workload (common numbers).
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np


@unique
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


@unique
class MeasureStream(IntEnum):
    """Streams of the harness and the calibration. Their generators take other keys than
    (replication, seed), so their numbers are a namespace of their own (WORK_DRAWS = 3 draws
    nothing that Stream.TENANTS does); never renumber them either: calibrations would refit to
    other values and sweeps would run in another order."""

    WORK_DRAWS = 3
    """Per-instance work scores of one work draw of a burst configuration, in predictions and
    fits (key: draw, seed, count, interval in microseconds)."""
    BOOTSTRAP = 11
    """Which runs a bootstrap refit of a calibration resamples (key: refit, seed)."""
    SWEEP_ORDER = 17
    """The random order of the points of `measure sweep` (key: seed)."""
    PARAMETER_DRAWS = 19
    """Parameter sets drawn from a calibration's intervals for prediction intervals (key: seed,
    number of draws)."""
    TRANSFER_ORDER = 23
    """The random order of benchmarks/transfer.py's held-out bursts (key: seed)."""


def measure_rng(stream: MeasureStream, *key: int) -> np.random.Generator:
    """The generator of a measurement or calibration stream for `key` (non-negative ints)."""
    return np.random.default_rng([int(stream), *key])
