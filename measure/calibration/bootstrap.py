"""Bootstrap intervals of a chosen family's parameters: refits on resampled configurations or runs.

Resamples come from the BOOTSTRAP random stream, one generator per replicate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from measure.calibration.data import Burst
from measure.calibration.families import Family
from measure.calibration.family_fit import FamilyFit, fit_family, measured_names
from measure.calibration.objective import Evaluator, replicate_noise
from measure.calibration.options import CalibrateOptions, Progress
from measure.calibration.parallel import parallel_map
from sim.model.node_model import NodeModel
from sim.streams import MeasureStream, measure_rng


def bootstrap_intervals(
    family: Family,
    fit: FamilyFit,
    base: NodeModel,
    bursts: Sequence[Burst],
    evaluator: Evaluator,
    options: CalibrateOptions,
    say: Progress,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from refits on resamples of whole configurations (summary tables,
    whose replicates are too few to resample alone) or whole runs (per-instance datasets).
    Measured work is re-measured on each resample, so its interval is a bootstrap one too."""
    groups: dict[object, list[Burst]] = {}
    for burst in bursts:
        unit = burst.key if burst.launch_s is None else burst.run_id
        groups.setdefault(unit, []).append(burst)
    units = list(groups)
    start = {name: float(getattr(fit.model, name)) for name in family.free}
    resamples = []
    for rep in range(options.bootstrap):
        rng = measure_rng(MeasureStream.BOOTSTRAP, rep, options.seed)
        picked = rng.integers(0, len(units), size=len(units))
        resample = [burst for i in picked for burst in groups[units[i]]]
        if len({b.count for b in resample}) >= 2 and len({b.interval_ms for b in resample}) >= 2:
            resamples.append(resample)  # one count (or interval) cannot separate the terms
    say(f"bootstrap: {len(resamples)} refits")
    noise = replicate_noise(bursts)
    refits = parallel_map(
        lambda resample: fit_family(
            family, base, resample, evaluator, noise, options, starts=[start]
        ),
        resamples, options.jobs, say,
    )
    per_instance = bursts[0].launch_s is not None
    names = list(family.free) + sorted(measured_names(family, per_instance))
    tail = (1 - options.interval_level) / 2
    intervals = {}
    for name in names:
        values = np.array([getattr(refit.model, name) for refit in refits])
        if values.size:
            low, high = np.quantile(values, [tail, 1 - tail])
            intervals[name] = (float(low), float(high))
    return intervals
