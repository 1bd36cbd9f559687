"""The background-load term the host calibrations added to the node model, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.kernel import ProcessorSharing
from sim.model.node_model import NodeModel, ready_times


def test_one_background_thread_halves_a_lone_instance_on_one_core() -> None:
    model = NodeModel(cores=1, work_s=1.0, background_jobs=1.0)
    assert ready_times(model, np.array([0.0]))[0] == pytest.approx(2.0)


def test_k_instances_share_the_cores_with_the_background() -> None:
    # 6 instances of 0.5 CPU-s on 2 cores with 2 background threads: each gets 2/8 of a core
    # until all finish together at 0.5 / 0.25 = 2 s.
    model = NodeModel(cores=2, work_s=0.5, background_jobs=2.0)
    np.testing.assert_allclose(ready_times(model, np.zeros(6)), 2.0)


def test_the_rate_cap_still_binds_when_the_share_is_larger() -> None:
    model = NodeModel(cores=8, work_s=1.0, background_jobs=1.0, max_rate=1.0)
    np.testing.assert_allclose(ready_times(model, np.zeros(3)), 1.0)


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
