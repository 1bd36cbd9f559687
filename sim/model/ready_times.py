"""Ready times of a burst on one node, as the node model predicts them (and when a fair
launcher actually launches each instance): the calibration's objective and the model-based
policy call this; it replays the launches through NodeState.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.model.node_model import NodeModel, draw_work
from sim.model.node_state import NodeState


def ready_times(
    model: NodeModel,
    launch_s: np.ndarray,
    work: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Absolute ready time of each instance given its planned launch time (any order); exact,
    O(n log n).

    Work per instance is `work` if given, else drawn with draw_work(model, n, rng); with
    work_cv == 0 no generator is needed.
    """
    return _replay(model, launch_s, work, rng, None)


def launched_and_ready_times(
    model: NodeModel,
    launch_s: np.ndarray,
    work: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ready_times(), and when each instance was actually launched: its planned time `launch_s`,
    or under a fair or reserved launcher the end of its launch (its lateness is the
    difference)."""
    launched = np.array(launch_s, dtype=float)
    return launched, _replay(model, launch_s, work, rng, launched)


def _replay(
    model: NodeModel,
    launch_s: np.ndarray,
    work: np.ndarray | None,
    rng: np.random.Generator | None,
    launched: np.ndarray | None,
) -> np.ndarray:
    """The ready times; with `launched`, fair and reserved launches also write their end
    into it."""
    launches = np.asarray(launch_s, dtype=float)
    n = launches.size
    if work is None:
        if rng is not None:
            work = draw_work(model, n, rng)
        elif model.work_cv == 0.0:
            work = np.full(n, model.work_s)
        else:
            raise ValueError("work_cv > 0: pass `work` or a numpy Generator `rng`")
    works = np.asarray(work, dtype=float)
    if works.shape != launches.shape:
        raise ValueError(f"work has shape {works.shape}, launch_s has {launches.shape}")
    out = np.full(n, np.nan)
    if n == 0:
        return out
    # The node's clock starts at 0; shift only when needed, so that non-negative launch times give
    # bit-identical results to a simulation that uses the same absolute times.
    shift = min(float(launches.min()), 0.0)
    node = NodeState(model, None if launched is None else _stamp_into(launched, shift))
    # Planned in time order (ties in index order, as the plan heap orders them): then the
    # queue of delay ends only grows at its end.
    order = np.argsort(launches, kind="stable")
    for i, t, w in zip(order.tolist(), (launches[order] - shift).tolist(),
                       works[order].tolist(), strict=True):
        node.plan(t, i, w)
    t = node.next_event()
    while t != math.inf:
        for i in node.advance(t):
            out[i] = t
        t = node.next_event()
    return out + shift


def _stamp_into(launched: np.ndarray, shift: float) -> Callable[[int, float], int]:
    """NodeState's `launched` for instances numbered by index: writes the launch's end."""

    def stamp(i: int, t: float) -> int:
        launched[i] = t + shift
        return i

    return stamp
