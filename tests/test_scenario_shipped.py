"""The shipped scenarios validate, and the study's host as shipped reproduces what the study
measured but the calibration never saw (its 800-instance figures, quoted in its text only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.engine.cluster import Cluster
from sim.engine.request import Request
from sim.engine.simulate import simulate
from sim.policies import FixedIntervalConfig
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_shipped_scenario_validates(path: Path) -> None:
    loaded = load_scenario(path)
    assert loaded.scenario.policies


def burst(count: int, interval_ms: float, replication: int) -> tuple[float, float]:
    """(first ready, all ready) of one burst on the paper host as paper-host.yaml sets it up."""
    sc = load_scenario(ROOT / "scenarios" / "paper-host.yaml").scenario
    cluster: Cluster = sc.cluster.build()
    policy = FixedIntervalConfig(interval_ms=interval_ms).build(np.random.default_rng(0))
    result = simulate(cluster, [Request(request_id=0, count=count, arrival_s=0.0)], policy,
                      replication=replication, seed=sc.seed)
    (request,) = result.requests
    return request.time_to_first_s, request.time_to_all_s


def mean_burst(count: int, interval_ms: float) -> tuple[float, float]:
    runs = [burst(count, interval_ms, rep) for rep in range(3)]
    return float(np.mean([r[0] for r in runs])), float(np.mean([r[1] for r in runs]))


def test_the_paper_host_predicts_the_studys_held_out_800_instance_bursts() -> None:
    # The study's text: 800 instances all ready at 18.96 s (7 ms) and 19.11 s (13 ms); first
    # ready at 9.46 s and 5.57 s. Not in the calibration's data file.
    first_7, all_7 = mean_burst(800, 7)
    first_13, all_13 = mean_burst(800, 13)
    assert all_7 == pytest.approx(18.96, rel=0.03)
    assert all_13 == pytest.approx(19.11, rel=0.03)
    # Conclusion 3: the larger interval barely moves the last ready, and brings the first
    # forward by seconds (3.9 s in the study).
    assert abs(all_13 - all_7) < 0.05 * all_7
    assert first_7 - first_13 > 2.0, (first_7, first_13)


def test_one_burst_of_800_beats_two_bursts_of_400_on_the_paper_host() -> None:
    # Conclusion 2 (study, 13 ms): 400 all ready at 10.52 s, 800 at 19.11 s: twice the first
    # exceeds the second by 0.93 s.
    _, all_400 = mean_burst(400, 13)
    _, all_800 = mean_burst(800, 13)
    assert all_400 == pytest.approx(10.52, rel=0.03)
    assert 2 * all_400 - all_800 > 0.5
