"""The background-load term the host calibrations added to the node model, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.kernel import ProcessorSharing
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times


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


def test_without_background_the_kernel_is_bit_identical() -> None:
    plain, explicit = ProcessorSharing(3.0, 0.7), ProcessorSharing(3.0, 0.7, background=0.0)
    for ps in (plain, explicit):
        ps.add_many(0.0, [(i, 0.1 * (i + 1)) for i in range(7)])
    times = []
    for ps in (plain, explicit):
        seen = []
        while ps.active:
            t = ps.next_completion()
            seen.append((t, ps.pop_completed(t)))
        times.append(seen)
    assert times[0] == times[1]


def test_a_negative_background_is_refused() -> None:
    with pytest.raises(ValueError, match="background"):
        ProcessorSharing(1.0, background=-1.0)
