"""Does the study's launcher explain its warm-up? The fair-launcher families on the 2016 table.

Usage: .venv/bin/python benchmarks/paper2016_launcher.py all-runs FAMILY... > out.json
       .venv/bin/python benchmarks/paper2016_launcher.py folds FAMILY SCHEME out.json
The same fits `measure calibrate` runs for model selection (its fit tasks, the options and seed
of calibration/paper2016.json), one family and one scheme at a time, without the bootstrap:
a whole refit of the table with every candidate takes hours on a shared 2-core machine. The
shipped family's held-out figures come from calibration/paper2016.json itself (`shipped`).
Results: benchmarks/results/paper2016-launcher/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import cast

import numpy as np

from measure.calibration.crossval import Scheme
from measure.calibration.data import Burst, load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME
from measure.calibration.fit import _run_task, _Task, check_design
from measure.calibration.objective import (
    Evaluator,
    Forecast,
    Noise,
    median_errors,
    replicate_noise,
    residuals,
    robust_loss,
)
from measure.calibration.options import CalibrateOptions
from measure.calibration.parallel import parallel_map
from sim.model.node_model import NodeModel

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "calibration" / "data" / "paper2016_burst_boot.csv"
OPTIONS = CalibrateOptions(name="paper2016", cores=8, jobs=2, bootstrap=0)
BASE = NodeModel(cores=8.0, work_s=1.0)


def main(argv: list[str]) -> None:
    data = load_calibration_data([TABLE])
    bursts = list(data.bursts)
    noise = replicate_noise(bursts)
    evaluator = Evaluator(OPTIONS.work_draws, OPTIONS.seed)
    if argv[0] == "all-runs":
        tasks = [_Task(FAMILY_BY_NAME[name], None) for name in argv[1:]]
    elif argv[0] == "folds":
        scheme = cast(Scheme, argv[2])
        tasks = [_Task(FAMILY_BY_NAME[argv[1]], fold) for fold in check_design(data)[scheme]]
    elif argv[0] == "shipped":
        shipped(bursts, noise)
        return
    else:
        raise SystemExit(__doc__)
    outcomes = parallel_map(lambda task: _run_task(task, BASE, bursts, evaluator, OPTIONS),
                            tasks, OPTIONS.jobs, lambda message: print(message, file=sys.stderr))
    forecasts: dict[tuple[int, float], Forecast] = {}
    for _, fc in outcomes:
        forecasts.update(fc)
    result = {
        "fits": [{"family": t.family.name, "test": None if t.fold is None else sorted(t.fold.test),
                  "cost": fit.cost, "model": fit.model.model_dump()}
                 for t, (fit, _) in zip(tasks, outcomes, strict=True)],
        "loss": robust_loss(residuals(forecasts, bursts, noise), OPTIONS.loss),
        "errors": median_errors(forecasts, bursts).model_dump(),
    }
    text = json.dumps(result, indent=2, default=str) + "\n"
    if argv[0] == "folds":
        Path(argv[3]).write_text(text)
    else:
        print(text, end="")


def shipped(bursts: list[Burst], noise: Noise) -> None:
    """The shipped family's and the straight line's losses and errors per scheme, from the
    per-configuration forecasts calibration/paper2016.json records."""
    recorded = json.loads((ROOT / "calibration" / "paper2016.json").read_text())
    for label, prefix in (("training", "fitted"), ("model LOCO", "count_heldout"),
                          ("model LOIO", "interval_heldout"),
                          ("line LOCO", "baseline_count_heldout")):
        forecasts = {(c["count"], c["interval_ms"]): Forecast(
            c[f"{prefix}_first_ready_s"], c[f"{prefix}_all_ready_s"], np.empty(0))
            for c in recorded["fit"]["configurations"]}
        loss = robust_loss(residuals(forecasts, bursts, noise), OPTIONS.loss)
        print(label, round(loss, 1), median_errors(forecasts, bursts))


if __name__ == "__main__":
    main(sys.argv[1:])
