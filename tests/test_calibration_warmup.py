"""The node warm-up term the 2016 calibration added to sim.model.node_model, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.node_model import NodeModel, NodeState, ready_times


def test_a_zero_warmup_adds_no_wait_and_a_window_delays_each_lone_instance() -> None:
    # Launches 1 s apart never meet on 2 cores: without a warm-up each is ready after its delay
    # and its work (0.1 + 0.5 s). A 0.3 s window opens at each launch (the node is empty every
    # time) and holds the CPU phase until 0.3 s, 0.2 s after the delay ended.
    launches = np.arange(5) * 1.0
    cold = NodeModel(cores=2, work_s=0.5, delay_s=0.1, warmup_s=0.0)
    np.testing.assert_allclose(ready_times(cold, launches), launches + 0.1 + 0.5)
    warm = NodeModel(cores=2, work_s=0.5, delay_s=0.1, warmup_s=0.3)
    np.testing.assert_allclose(ready_times(warm, launches), launches + 0.3 + 0.5)


def test_instances_launched_during_the_warmup_start_their_cpu_phase_together() -> None:
    # One core, 1 s of work each: launched at 0 and 0.5, both wait for the window to end at 2,
    # then share the core (rate 1/2 each) and finish together at 2 + 2 * 1 = 4.
    model = NodeModel(cores=1, work_s=1.0, warmup_s=2.0)
    np.testing.assert_allclose(ready_times(model, np.array([0.0, 0.5])), [4.0, 4.0])


def test_the_delay_still_counts_when_it_ends_after_the_window() -> None:
    model = NodeModel(cores=4, work_s=1.0, delay_s=0.3, warmup_s=2.0)
    # Launched at 1.9: its delay ends at 2.2, after the window, so the window does not matter.
    np.testing.assert_allclose(ready_times(model, np.array([0.0, 1.9])), [3.0, 3.2])


def test_a_node_that_emptied_warms_up_again_but_a_busy_one_does_not() -> None:
    model = NodeModel(cores=4, work_s=1.0, warmup_s=2.0)
    # 0 -> ready at 3 (window 0..2). 5: nothing in flight, new window 5..7 -> ready 8.
    # 6: the node is busy (the instance from 5 is in flight) -> it joins the same window -> 8.
    ready = ready_times(model, np.array([0.0, 5.0, 6.0]))
    np.testing.assert_allclose(ready, [3.0, 8.0, 8.0])


def test_batched_and_single_launches_agree_on_the_warmup() -> None:
    model = NodeModel(cores=2, work_s=0.4, delay_s=0.1, warmup_s=1.5, spawn_s=0.01)
    single, batch = NodeState(model), NodeState(model)
    for instance in range(5):
        single.launch(0.0, instance, 0.4)
    batch.launch_batch(0.0, list(range(5)), [0.4] * 5)
    assert single.next_event() == pytest.approx(batch.next_event())
    assert single.advance(10.0) == batch.advance(10.0)
