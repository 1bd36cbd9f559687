"""The range of a calibration's data (counts, intervals, cores) and the words that say when a
prediction goes beyond it: every prediction a user reads names the range it extrapolates.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sim.model.calibration import Calibration


class DataRange(BaseModel):
    """What a calibration has seen: bursts of `count` instances `interval_ms` apart on a host of
    `cores` CPUs (None: the file does not say)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: tuple[int, int]
    interval_ms: tuple[float, float]
    cores: float | None


def data_range(calibration: Calibration) -> DataRange:
    """The counts, intervals and cores of the calibration's data."""
    configs = calibration.provenance.configurations
    counts = [c.count for c in configs]
    intervals = [c.interval_ms for c in configs]
    return DataRange(count=(min(counts), max(counts)),
                     interval_ms=(min(intervals), max(intervals)),
                     cores=calibration.provenance.host.cores)


def _beyond(name: str, value: float, low: float, high: float, unit: str) -> str | None:
    if low <= value <= high:
        return None
    return f"{name} {value:g}{unit} is outside the calibration's data ({low:g}-{high:g}{unit})"


def extrapolations(seen: DataRange, count: float | None = None,
                   interval_ms: float | None = None, cores: float | None = None) -> list[str]:
    """One sentence for each quantity of a prediction outside what the calibration has seen;
    empty when the prediction interpolates."""
    found = []
    if count is not None:
        found.append(_beyond("count", count, *seen.count, ""))
    if interval_ms is not None:
        found.append(_beyond("interval", interval_ms, *seen.interval_ms, " ms"))
    if cores is not None and seen.cores is not None:
        found.append(_beyond("cores", cores, seen.cores, seen.cores, ""))
    return [f for f in found if f is not None]
