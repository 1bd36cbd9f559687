"""Workloads: arrival rates and patterns, request sizes and work distributions, trace replay,
and independent, reproducible random streams.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sim.workloads.processes import (
    ChoiceSize,
    DailyWorkload,
    ExponentialWork,
    FixedSize,
    GeometricSize,
    HyperExponentialWork,
    LogNormalSize,
    MMPPWorkload,
    PoissonWorkload,
    TraceWorkload,
    UniformSize,
    Workload,
)


def test_poisson_arrivals_have_the_requested_rate_and_exponential_gaps() -> None:
    requests = list(PoissonWorkload(rate_per_s=50.0, duration_s=2_000.0).requests(0, 1))
    times = np.array([r.arrival_s for r in requests])
    assert len(times) == pytest.approx(100_000, rel=0.01)
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.01)  # exponential: CV 1
    assert times.max() < 2_000.0 and np.all(gaps >= 0)
    assert [r.request_id for r in requests[:3]] == [0, 1, 2]


def test_mmpp_on_off_arrivals_are_bursty_with_the_long_run_rate() -> None:
    workload = MMPPWorkload(rates_per_s=(40.0, 0.0), mean_sojourn_s=(2.0, 8.0),
                            duration_s=20_000.0)
    times = np.array([r.arrival_s for r in workload.requests(0, 2)])
    assert workload.mean_rate_per_s == pytest.approx(8.0)
    assert len(times) / 20_000.0 == pytest.approx(8.0, rel=0.03)
    per_second = np.bincount(times.astype(int))
    # Index of dispersion of counts: 1 for Poisson, far above 1 for on/off bursts.
    assert per_second.var() / per_second.mean() > 5


def test_the_daily_pattern_peaks_and_dips_where_it_is_told() -> None:
    workload = DailyWorkload(mean_rate_per_s=2.0, amplitude=0.8, duration_s=86_400.0,
                             peak_s=43_200.0)
    times = np.array([r.arrival_s for r in workload.requests(0, 3)])
    assert len(times) == pytest.approx(2.0 * 86_400, rel=0.02)
    hourly = np.bincount((times // 3_600).astype(int), minlength=24) / 3_600
    assert int(np.argmax(hourly)) in (11, 12)
    assert int(np.argmin(hourly)) in (0, 23)
    assert hourly.max() == pytest.approx(2.0 * 1.8, rel=0.08)


@pytest.mark.parametrize(
    ("size", "mean"),
    [(FixedSize(count=7), 7.0), (GeometricSize(mean=20), 20.0), (UniformSize(low=1, high=9), 5.0),
     (ChoiceSize(values=(1, 100), weights=(3, 1)), 25.75), (LogNormalSize(mean=30, cv=1.0), 30.0)],
    ids=["fixed", "geometric", "uniform", "choice", "lognormal"],
)
def test_request_sizes_follow_their_distribution(size: object, mean: float) -> None:
    workload = PoissonWorkload(rate_per_s=100.0, duration_s=400.0, size=size)  # type: ignore[arg-type]
    counts = np.array([r.count for r in workload.requests(0, 4)])
    assert counts.min() >= 1
    assert counts.mean() == pytest.approx(mean, rel=0.03)


def test_work_distributions_have_mean_one_and_their_cv() -> None:
    rng = np.random.default_rng([5, 0, 1])
    exp = ExponentialWork().draw(200_000, rng)
    h2 = HyperExponentialWork(cv=3.0).draw(400_000, rng)
    assert exp.mean() == pytest.approx(1.0, rel=0.01)
    assert h2.mean() == pytest.approx(1.0, rel=0.02)
    assert h2.std() / h2.mean() == pytest.approx(3.0, rel=0.05)


def test_streams_are_independent_so_changing_sizes_keeps_arrival_times() -> None:
    small = PoissonWorkload(rate_per_s=5.0, duration_s=100.0, size=FixedSize(count=1))
    large = small.model_copy(update={"size": GeometricSize(mean=50)})
    assert [r.arrival_s for r in small.requests(0, 9)] == \
        [r.arrival_s for r in large.requests(0, 9)]
    other_replication = [r.arrival_s for r in small.requests(1, 9)]
    assert other_replication != [r.arrival_s for r in small.requests(0, 9)]
    assert list(large.requests(0, 9)) == list(large.requests(0, 9))


def test_tenants_and_work_scales_are_drawn_per_request() -> None:
    workload = PoissonWorkload(rate_per_s=10.0, duration_s=100.0, tenants=3,
                               size=FixedSize(count=4), work=ExponentialWork())
    requests = list(workload.requests(0, 1))
    assert {r.tenant for r in requests} == {"t0", "t1", "t2"}
    assert all(r.work_scale is not None and len(r.work_scale) == 4 for r in requests)


def test_a_trace_is_replayed_with_its_own_columns(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,count,tenant,memory_mb\n0.5,3,alice,64\n0.5,1,bob,128\n2,10,alice,64\n")
    requests = list(TraceWorkload(path=trace, time_scale=2.0).requests(0, 0))
    assert [(r.arrival_s, r.count, r.tenant, r.memory_mb) for r in requests] == [
        (1.0, 3, "alice", 64), (1.0, 1, "bob", 128), (4.0, 10, "alice", 64)]


def test_a_trace_without_counts_draws_sizes(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n" + "\n".join(str(i) for i in range(200)) + "\n")
    workload = TraceWorkload(path=trace, size=UniformSize(low=2, high=4), max_requests=150)
    requests = list(workload.requests(0, 1))
    assert len(requests) == 150
    assert {r.count for r in requests} == {2, 3, 4}


def test_a_bad_trace_says_what_is_wrong(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,count\n2,1\n1,1\n")
    with pytest.raises(ValueError, match="nondecreasing"):
        list(TraceWorkload(path=trace).requests(0, 0))
    with pytest.raises(ValueError, match="not found"):
        list(TraceWorkload(path=tmp_path / "missing.csv").requests(0, 0))


def test_workloads_validate_from_plain_data() -> None:
    adapter: TypeAdapter[Workload] = TypeAdapter(Workload)
    workload = adapter.validate_python(
        {"kind": "poisson", "rate_per_s": 2, "duration_s": 10, "size": {"kind": "geometric",
                                                                          "mean": 4}})
    assert isinstance(workload, PoissonWorkload)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "poisson", "rate_per_s": 2, "duration_s": 10, "rat": 1})
    with pytest.raises(ValidationError):
        MMPPWorkload(rates_per_s=(1.0, 2.0), mean_sojourn_s=(1.0,), duration_s=5.0)
