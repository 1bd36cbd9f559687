"""One definition of a burst's figures: `measure burst`'s summary and `measure plot`'s per-run
table agree with each other and with numpy's linear quantile worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from measure.harness.records import InstanceRow
from measure.harness.summary import burst_summary, per_run
from sim.model.burst_stats import burst_figures, interpolate, quantile, quantile_ranks


def rows(ready: list[float], statuses: list[str] | None = None) -> list[InstanceRow]:
    statuses = statuses or ["ready"] * len(ready)
    out = []
    for i, (t, status) in enumerate(zip(ready, statuses, strict=True)):
        row = InstanceRow(run_id="r", boot="firmware", accel="kvm", count=len(ready),
                          interval_ms=10.0, memory_mb=16, repeat=0, instance=i,
                          planned_launch_s=0.01 * i, launch_s=0.01 * i + 0.001 * i,
                          ready_s=t, cpu_s=0.03)
        row.status = status  # type: ignore[assignment]
        out.append(row)
    return out


def test_the_burst_summary_and_the_plot_table_give_the_same_median() -> None:
    # Ready at 1, 2, 3, 4 s: the median is the mean of the middle two, 2.5, in both places.
    burst = rows([1.0, 2.0, 3.0, 4.0])
    summary = burst_summary(burst)
    table = per_run(pd.DataFrame([r.to_json() for r in burst]))
    assert summary["median_ready_s"] == 2.5
    assert table.median_ready_s.iloc[0] == 2.5
    assert summary["p95_ready_s"] == pytest.approx(3.85) == table.p95_ready_s.iloc[0]
    assert (summary["first_ready_s"], summary["all_ready_s"]) == (1.0, 4.0)


def test_linear_quantiles_interpolate_between_order_statistics() -> None:
    # Virtual index q * (n - 1) = 0.3 * 4 = 1.2 on [10, 20, 30, 40, 50]: 20 + 0.2 * 10.
    assert quantile(np.array([50.0, 10.0, 40.0, 20.0, 30.0]), 0.3) == pytest.approx(22.0)
    # One row per work draw: each row answers for itself.
    both = quantile(np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]), 0.5)
    np.testing.assert_allclose(both, [2.0, 20.0])


def test_a_burst_with_an_unready_instance_has_no_all_ready_time() -> None:
    summary = burst_summary(rows([1.0, 2.0, float("nan")], ["ready", "ready", "timeout"]))
    assert summary["ready"] == 2 and summary["all_ready_s"] is None
    assert summary["first_ready_s"] == 1.0 and summary["median_ready_s"] == 1.5
    assert burst_figures([]) == {"first_ready_s": None, "median_ready_s": None,
                                 "p95_ready_s": None, "all_ready_s": None}


def test_launch_lateness_is_in_milliseconds() -> None:
    # Instance i launched i ms late: lateness 0, 1, 2, 3 ms; linear p50 1.5 ms, max 3 ms.
    summary = burst_summary(rows([1.0, 2.0, 3.0, 4.0]))
    assert summary["launch_late_p50_ms"] == pytest.approx(1.5)
    assert summary["launch_late_max_ms"] == pytest.approx(3.0)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.95, 1.0])
def test_two_order_statistics_give_the_quantile_bit_for_bit(q: float) -> None:
    # The engine's p10 comes from two order statistics; numpy's quantile sees them all.
    rng = np.random.default_rng([2016, round(q * 100)])
    for count in [*range(1, 64), 99, 100, 101, 999, 1000]:
        for ready in (np.sort(rng.lognormal(0.0, 1.0, count)),
                      np.sort(np.round(rng.uniform(0.0, 3.0, count), 1))):  # with ties
            lower, upper, weight = quantile_ranks(count, q)
            got = interpolate(float(ready[lower]), float(ready[upper]), weight)
            assert got == float(np.quantile(ready, q)), (count, q)
            assert ready[lower] <= got <= ready[upper]
