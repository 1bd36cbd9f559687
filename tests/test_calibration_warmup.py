"""The node warm-up term the 2016 calibration added to sim.model.node_model: a batch of launches
and the same launches one by one agree (its hand-checked bursts are in test_node_model.py)."""

from __future__ import annotations

import pytest

from sim.model.node_model import NodeModel
from sim.model.node_state import NodeState


def test_batched_and_single_launches_agree_on_the_warmup() -> None:
    model = NodeModel(cores=2, work_s=0.4, delay_s=0.1, warmup_s=1.5, spawn_s=0.01)
    single, batch = NodeState(model), NodeState(model)
    for instance in range(5):
        single.launch(0.0, instance, 0.4)
    batch.launch_batch(0.0, list(range(5)), [0.4] * 5)
    assert single.next_event() == pytest.approx(batch.next_event())
    assert single.advance(10.0) == batch.advance(10.0)
