"""`measure calibrate`, `measure predict` and `measure validate`: fit a node model to measured
bursts, ask it about a burst, and compare its predictions with measured runs.

User mistakes raise UserError subclasses (one line, exit 2 through sim.entry.run_app).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from measure.calibration.families import FAMILY_BY_NAME
from measure.harness.records import parse_launcher
from sim.errors import UserError
from sim.model.calibration import (
    HostInfo,
    calibration_with_launcher,
    load_calibration,
    write_calibration,
)
from sim.model.forecast import forecast
from sim.model.probe import load_probe

if TYPE_CHECKING:
    from measure.calibration.data import CalibrationData

LOSSES = ("soft_l1", "huber", "cauchy", "linear")

app = typer.Typer(no_args_is_help=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _families(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAMILY_BY_NAME]
    if unknown or not names:
        raise UserError(
            f"unknown model family {', '.join(unknown) or '(none given)'}; "
            f"use some of: {', '.join(FAMILY_BY_NAME)}"
        )
    return names


@app.command("calibrate")
def calibrate_command(
    datasets: Annotated[
        list[Path],
        typer.Argument(
            help="Dataset directories or instances.parquet files from `measure burst`/`sweep`, "
            "or summary CSVs with count, interval_ms, memory_mb, first_ready_s, all_ready_s."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Calibration JSON to write.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Calibration name (default: --out's stem).")
    ] = None,
    cores: Annotated[
        str | None,
        typer.Option("--cores", help="CPUs the instances share: a number, or `effective` (what "
                                     "the data's 100-at-1-ms runs got, as `measure probe` "
                                     "reads a host; default: the CPUs in the manifests)."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="The measured host as its source describes it (for tables)."),
    ] = None,
    families: Annotated[
        str | None,
        typer.Option("--families", help="Comma-separated candidate families (default: all)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of work draws and bootstrap.")] = 2016,
    draws: Annotated[
        int, typer.Option("--draws", help="Work draws per configuration in every prediction.")
    ] = 2,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap refits for the intervals (0: none).")
    ] = 30,
    loss: Annotated[str, typer.Option("--loss", help=f"Robust loss: {', '.join(LOSSES)}.")] = (
        "soft_l1"
    ),
    jobs: Annotated[
        int, typer.Option("--jobs", help="Processes for the independent fits (same result).")
    ] = 1,
) -> None:
    """Fit candidate node models to measured bursts, choose one by held-out error, write it."""
    # Imported here, as in the commands below: `measure predict` answers without loading the
    # fitting's pandas, scipy.optimize and scipy.stats (a second of start-up on this machine).
    from measure.calibration.data import load_calibration_data
    from measure.calibration.fit import (
        CalibrateOptions,
        calibrate,
        candidate_families,
        check_design,
    )

    if loss not in LOSSES:
        raise UserError(f"unknown --loss {loss!r}; use one of: {', '.join(LOSSES)}")
    if draws < 1:
        raise UserError(f"--draws must be at least 1 (got {draws})")
    if bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more (got {bootstrap})")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    candidates = _families(families)
    stated = HostInfo(source="stated", description=host) if host else None
    data = load_calibration_data(datasets, host=stated)
    other = sum(b.launcher != "realtime" for b in data.bursts)
    if other:
        if other == len(data.bursts):
            raise UserError("no run was measured with the realtime launcher; calibrate realtime "
                            "runs, then fit the launcher with `measure calibrate-launcher`")
        _say(f"leaving out {other} fair- or reserved-launcher runs (the fair launcher is fitted "
             "by `measure calibrate-launcher`)")
        data = data.of_launcher("realtime")
    check_design(data)
    shared = _cores(cores, data)
    options = CalibrateOptions(
        name=name or out.stem,
        seed=seed,
        work_draws=draws,
        bootstrap=bootstrap,
        loss=loss,
        families=candidates,
        cores=shared,
        jobs=jobs,
    )
    tried = candidate_families(data, options)
    _say(
        f"calibrating {options.name}: {len(data.bursts)} runs, "
        f"{len(data.keys())} configurations, {len(tried)} candidate families"
    )
    calibration = calibrate(data, options, progress=_say)
    try:
        write_calibration(calibration, out)
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror}); choose another --out") from None
    scores = calibration.fit.model
    _say(
        f"wrote {out}: family {calibration.family}; leave-one-count-out median error "
        f"first {scores.leave_one_count_out.first_ready:.1%}, "
        f"all {scores.leave_one_count_out.all_ready:.1%}"
    )


def _cores(text: str | None, data: CalibrationData) -> float | None:
    """--cores: None (the manifests' CPUs), a positive number, or `effective`: the CPU the
    instances of the data's probe-configuration runs got (host_reference), which is what the
    probe maps a calibration by (docs/calibration.md, "Transfer")."""
    from measure.calibration.host_costs import host_reference

    if text is None:
        return None
    if text == "effective":
        reference = host_reference(data.bursts)
        if reference is None:
            raise UserError("--cores effective needs per-instance runs of 100 instances at 1 ms "
                            "in the data (the probe's configuration); pass a number")
        return reference.effective_cores
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--cores must be a number or `effective` (got {text!r})") from None
    if not value > 0 or not math.isfinite(value):
        raise UserError(f"--cores must be positive (got {text})")
    return value


@app.command("predict")
def predict_command(
    calibration: Annotated[
        Path, typer.Option("--calibration", help="Calibration JSON from `measure calibrate`.")
    ],
    count: Annotated[int, typer.Option("--count", help="Instances in the burst.")],
    interval_ms: Annotated[
        float, typer.Option("--interval-ms", help="Planned interval between launches (ms).")
    ],
    probe: Annotated[
        Path | None, typer.Option("--probe", help="Probe file from `measure probe`: carry the "
                                                  "calibration to the probed host.")
    ] = None,
    launcher: Annotated[
        str | None, typer.Option("--launcher", help="realtime | fair | reserved (default: the "
                                                    "calibration's, realtime)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Predicted first, p10, median, p95 and all-ready time of one burst on one node, each with
    an 80 % interval for a single run; a warning on stderr when it extrapolates."""
    if count < 1:
        raise UserError(f"--count must be at least 1 (got {count})")
    if not interval_ms >= 0 or not math.isfinite(interval_ms):
        raise UserError(f"--interval-ms must be 0 or more (got {interval_ms:g})")
    mode = None if launcher is None else parse_launcher(launcher)
    fitted = load_calibration(calibration)
    fitted = calibration_with_launcher(fitted, mode, str(calibration))
    probed = None if probe is None else load_probe(probe)
    result = forecast(fitted, count, interval_ms, probed, str(probe))
    for sentence in result.extrapolation:
        print(f"warning: extrapolation: {sentence}", file=sys.stderr)
    if json_out:
        print(result.model_dump_json(indent=2))
        return
    cells = ", ".join(
        f"{label} {getattr(result, name):.2f} s [{getattr(result, name + '_interval')[0]:.2f}-"
        f"{getattr(result, name + '_interval')[1]:.2f}]"
        for label, name in (("first", "first_ready_s"), ("p10", "p10_ready_s"),
                            ("median", "median_ready_s"), ("p95", "p95_ready_s"),
                            ("all", "all_ready_s")))
    print(f"{count} instances every {interval_ms:g} ms on {fitted.name} ({fitted.family}, "
          f"{fitted.model.launcher} launcher{', probed host' if probed else ''}): {cells} "
          f"({result.interval_level:.0%} intervals for one run)")
    if result.cold_memory is not None:
        cold = result.cold_memory
        print(f"if the host has taken back its free memory: instances beyond the first "
              f"{cold.backed_instances:.0f} pay {1e3 * cold.extra_cpu_s:.1f} ms more CPU each, "
              f"median {cold.median_ready_s:.2f} s, all {cold.all_ready_s:.2f} s (a bound: "
              "docs/calibration.md)")


@app.command("calibrate-launcher")
def calibrate_launcher_command(
    datasets: Annotated[list[Path], typer.Argument(
        help="Datasets with fair-launcher runs and realtime runs of 100 at 1 ms beside them "
             "(measure sweep --launchers realtime,fair), and/or reserved-launcher runs of "
             "dense bursts (--launchers reserved).")],
    calibration: Annotated[
        Path, typer.Option("--calibration", help="Calibration JSON of the same boot path.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the calibration with its "
                                                    "launcher term.")],
) -> None:
    """Fit the fair launcher's CPU per launch to fair-launcher runs (the rest of the model is the
    calibration's, carried to the runs' host by the realtime runs measured beside them); measure
    a reserved launcher's time per launch from reserved-launcher runs."""
    from measure.calibration.data import load_calibration_data
    from measure.calibration.launcher_fit import fit_launcher

    fitted = load_calibration(calibration)
    data = load_calibration_data(datasets)
    if data.boot != fitted.provenance.boot:
        raise UserError(f"the data boot {data.boot} and {calibration} was fitted to "
                        f"{fitted.provenance.boot}; give a calibration of the same boot path")
    result = fit_launcher(fitted, data)
    try:
        write_calibration(result, out)
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror}); choose another --out") from None
    fit = result.launcher_fit
    assert fit is not None
    cells = {label: ", ".join(f"{name} {getattr(errors, name):.1%}" for name in
                              ("first_ready", "p10_ready", "median_ready", "all_ready"))
             for label, errors in (("model", fit.heldout),
                                   ("launches on time", fit.heldout_without_launcher),
                                   ("straight line", fit.heldout_line))}
    fair = any(b.launcher == "fair" for b in data.bursts)
    _say(f"wrote {out}: launch CPU {1e3 * result.model.launch_cpu_s:.2f} ms "
         f"({1e3 * fit.launch_cpu_s_on_data_host:.2f} ms on the data's host"
         + ("" if fair else f"; kept from {calibration}, these data have no fair-launcher run")
         + "); held-out median error, leave one configuration out: "
         + "; ".join(f"{k}: {v}" for k, v in cells.items()))
    if fit.reserved is not None and any(b.launcher == "reserved" for b in data.bursts):
        _say(f"reserved launcher: {1e3 * result.model.launch_alone_s:.2f} ms per launch "
             f"({1e3 * fit.reserved.launch_alone_s_on_data_host:.2f} ms on its runs' host, "
             f"{fit.reserved.runs_measured} runs)")


@app.command("validate")
def validate_command(
    dataset: Annotated[Path, typer.Argument(help="dataset written by `measure replay` or "
                                                 "`measure burst`")],
    calibration: Annotated[Path, typer.Option(help="calibration JSON of the host")],
    plots: Annotated[Path | None, typer.Option(help="write CDF overlay PNGs here")] = None,
    work: Annotated[str, typer.Option(help="model: work drawn from the calibration, as the "
                                           "simulator does; measured: each instance's real CPU "
                                           "time")] = "model",
    probe: Annotated[Path | None, typer.Option(help="probe file from `measure probe`: the "
                                                   "calibration carried to the probed host")
                     ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Compare real per-instance ready times with the model's prediction for the same launches."""
    from measure.calibration.validate import validate_dataset

    results = validate_dataset(dataset, calibration, plots, work, probe)
    if json_out:
        print(json.dumps([r.model_dump() for r in results], indent=2))
        return
    print(f"{'run':<44} {'n':>4}  {'first':>15} {'median':>15} {'p95':>15} {'all':>15}  W1/mk")
    for r in results:
        cells = [f"{r.real[k]:6.3f}/{r.predicted[k]:6.3f}" for k in
                 ("first_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s")]
        print(f"{r.run_id[:44]:<44} {r.count:>4}  " + " ".join(f"{c:>15}" for c in cells)
              + f"  {r.wasserstein_over_makespan:5.1%}")
        errs = ", ".join(f"{k.replace('_ready_s', '')} {v:+.1%}"
                         for k, v in r.relative_error.items())
        print(f"{'':<44}       model error: {errs}")
    print("(cells: real/predicted seconds from the burst start)")
