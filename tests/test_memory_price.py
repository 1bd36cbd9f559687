"""The price of fresh memory: how the probe reads it (measure/harness/memory.py) and what the node
model charges for it (NodeModel.reclaimed_memory_s, backed_instances)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from measure.harness import memory
from measure.harness.memory import CHUNK_GB, anonymous_kib, chunk_prices, price_of
from sim.model.node_model import NodeModel
from sim.model.probe import MemoryPrice
from sim.model.ready_times import ready_times


def test_the_pool_ends_inside_the_chunk_whose_price_mixes_the_two() -> None:
    # A chunk of share s backed at 0.5 s/GB and 1 - s reclaimed at 2.9 costs
    # s * 0.5 + (1 - s) * 2.9 = 1.5 per GB: s = 1.4 / 2.4.
    backed, reclaimed, pool = price_of([0.5] * 30 + [1.5] + [2.9] * 4)
    assert (backed, reclaimed) == (0.5, 2.9)
    assert pool == pytest.approx((30 + 1.4 / 2.4) * CHUNK_GB)
    # A step on a chunk's edge: the pool is the chunks before it.
    assert price_of([0.5] * 8 + [2.9] * 4) == (0.5, 2.9, 8 * CHUNK_GB)


def test_no_step_means_a_pool_at_least_as_large_as_what_was_faulted_in() -> None:
    # The first chunk of a run is often dearer (measured 0.64 against 0.42-0.49): no step.
    prices = [0.64, 0.44, 0.42, 0.45, 0.48, 0.44]
    backed, reclaimed, pool = price_of(prices)
    assert backed == reclaimed == pytest.approx(float(np.median(prices[:4])))
    assert pool == len(prices) * CHUNK_GB


def test_settling_waits_until_the_reporting_count_stops(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The count rises 512 MB a second for 10 s, then stays: settled 5 quiet seconds later.
    count = tmp_path / "reported_kib"
    count.write_text("0")
    monkeypatch.setattr(memory, "REPORTED_KIB", count)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        count.write_text(str(int(min(now[0], 10.0) * 512 * 1024)))

    assert memory.settle_reporting(quiet_s=5.0, clock=lambda: now[0], sleep=sleep) == 15.0
    # Without the count (another kernel) there is nothing to wait for.
    monkeypatch.setattr(memory, "REPORTED_KIB", tmp_path / "absent")
    assert memory.settle_reporting(clock=lambda: now[0], sleep=sleep) == 0.0


def test_fresh_memory_is_faulted_in_and_priced_on_this_host() -> None:
    prices = chunk_prices(2 * CHUNK_GB)
    assert len(prices) == 2 and all(0.0 < p < 60.0 for p in prices)
    kib = anonymous_kib(os.getpid())
    assert kib is not None and kib > 1024  # (this interpreter and numpy)
    assert anonymous_kib(1 << 23) is None  # (beyond any pid_max)


PRICE = MemoryPrice(per_instance_gb=0.014, backed_s_per_gb=0.5, reclaimed_s_per_gb=2.8,
                    backed_gb=7.0, chunk_s_per_gb=[], settle_s=0.0, reporting=True)


def test_the_memory_price_gives_the_node_models_two_terms() -> None:
    # 14 MB at 2.8 - 0.5 s per GB more; 7 GB backed hold 500 instances of 14 MB.
    assert PRICE.extra_s == pytest.approx(0.014 * 2.3)
    assert PRICE.backed_instances == pytest.approx(500.0)


@pytest.mark.parametrize("backed", [0.0, 37.5, 80.0, 500.0])
def test_a_dense_burst_ends_when_the_cores_have_done_its_work_and_memory(backed: float) -> None:
    # 120 equal boots launched at once on one core keep it busy until the last is ready: the
    # all-ready time is the total work, and the instances beyond the backed pool (the one
    # straddling it for its part) each add the reclaimed price.
    n, w, extra = 120, 0.01, 0.004
    model = NodeModel(cores=1, work_s=w, reclaimed_memory_s=extra, backed_instances=backed)
    ready = ready_times(model, np.zeros(n), np.full(n, w))
    assert ready.max() == pytest.approx(n * w + max(0.0, n - backed) * extra, rel=1e-9)
    # Below the pool nothing changes, bit for bit.
    if backed >= n:
        plain = NodeModel(cores=1, work_s=w)
        np.testing.assert_array_equal(ready, ready_times(plain, np.zeros(n), np.full(n, w)))
