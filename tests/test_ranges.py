"""Every prediction names the range of the calibration's data it leaves."""

from __future__ import annotations

from sim.model.ranges import DataRange, extrapolations

SEEN = DataRange(count=(50, 300), interval_ms=(1.0, 20.0), cores=2)


def test_inside_the_data_nothing_is_said() -> None:
    assert extrapolations(SEEN, count=300, interval_ms=1.0, cores=2) == []


def test_each_quantity_outside_is_named_with_the_range() -> None:
    said = extrapolations(SEEN, count=100_000, interval_ms=0.0, cores=8)
    assert said == [
        "count 100000 is outside the calibration's data (50-300)",
        "interval 0 ms is outside the calibration's data (1-20 ms)",
        "cores 8 is outside the calibration's data (2-2)",
    ]


def test_unknown_cores_are_not_judged() -> None:
    assert extrapolations(DataRange(count=(1, 2), interval_ms=(1, 2), cores=None), cores=64) == []
