"""The background-load term the host calibrations added to the node model, against processor
sharing worked out step by step (its hand-checked bursts are in test_node_model.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.kernel import ProcessorSharing
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times


def shared_by_hand(works: list[float], capacity: float, max_rate: float) -> list[float]:
    """Completion times of jobs all started at 0 under processor sharing, worked out step by
    step: while n jobs remain, each runs at min(max_rate, capacity / n), so the smallest
    remaining job finishes next."""
    left = sorted(works)
    t, done = 0.0, []
    while left:
        rate = min(max_rate, capacity / len(left))
        step = left[0] / rate
        t += step
        done.append(t)
        left = [w - rate * step for w in left[1:]]
    return done


def test_without_background_the_cores_are_shared_by_the_instances_alone() -> None:
    # 7 instances of 0.1 .. 0.7 CPU-s on 3 cores, at most 0.7 of a core each: the first three
    # finish under the 3/n share, the last four under the rate cap.
    works = [0.1 * (i + 1) for i in range(7)]
    model = NodeModel(cores=3.0, work_s=0.4, max_rate=0.7, background_jobs=0.0)
    ready = ready_times(model, np.zeros(7), work=np.array(works))
    np.testing.assert_allclose(ready, shared_by_hand(works, 3.0, 0.7), rtol=1e-12)


def test_a_negative_background_is_refused() -> None:
    with pytest.raises(ValueError, match="background"):
        ProcessorSharing(1.0, background=-1.0)
