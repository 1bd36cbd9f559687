"""Does a calibration hold on this host today? Probe, then bursts no calibration saw, then the
errors and interval coverage of each calibration's predictions with and without the probe.

    .venv/bin/python benchmarks/transfer.py measure --out runs/transfer        # ~6 min, quiet host
    .venv/bin/python benchmarks/transfer.py analyse runs/transfer \\
        --calibration calibration/firmware.json [--json]

`measure` runs `measure probe` (5 bursts of 100 at 1 ms), then CONFIGS x 3 repeats in random
order (counts 60-1,000, intervals 2-16 ms, none on a calibration grid), then a second probe
(how far the host's speed moved meanwhile). Figures go to docs/calibration.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from measure.harness.burst import BurstResult
from measure.harness.guest import BootPath
from measure.harness.probe import run_probe
from measure.harness.sweep import SWEEP_STREAM, SweepPoint, run_sweep

CONFIGS: tuple[tuple[int, float], ...] = (
    (60, 3.0), (150, 16.0), (250, 9.0), (550, 2.0), (850, 11.0), (1000, 6.0))
"""(count, interval ms): off the grids of calibration/data/host-firmware (counts 50-300 x
1, 2, 5, 10, 20 ms) and the extended sweep (100-1,000 x 1, 4, 7, 13, 19 ms)."""
REPEATS = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def measure(
    out: Annotated[Path, typer.Option(help="directory for the probes and the bursts")],
    seed: Annotated[int, typer.Option(help="seed of the random burst order")] = 0,
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
) -> None:
    """Probe, run the held-out bursts, probe again."""
    out.mkdir(parents=True, exist_ok=True)
    if boot not in ("firmware", "bios"):
        raise typer.BadParameter("--boot: firmware or bios")
    b: BootPath = "firmware" if boot == "firmware" else "bios"
    _probe(b, out, "probe-before")
    points = [SweepPoint(b, "kvm", n, i, 16, r) for n, i in CONFIGS for r in range(REPEATS)]
    rng = np.random.default_rng([SWEEP_STREAM, seed])
    points = [points[k] for k in rng.permutation(len(points))]
    t0 = time.monotonic()

    def done(p: SweepPoint, r: BurstResult | None) -> None:
        state = "done before" if r is None else f"all ready {r.manifest.all_ready_s:.2f} s"
        print(f"{p.count} at {p.interval_ms:g} ms, repeat {p.repeat}: {state}", file=sys.stderr)

    run_sweep(points, out / "bursts", settle_s=2.0, on_done=done)
    print(f"bursts: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    _probe(b, out, "probe-after")


def _probe(boot: BootPath, out: Path, name: str) -> None:
    path = out / f"{name}.json"
    if path.exists():
        return
    probe = run_probe(boot, "kvm", 16, out / f"{name}-runs")
    path.write_text(probe.model_dump_json(indent=1) + "\n")
    print(f"{name}: CPU per boot {probe.speed.boot_cpu_s * 1e3:.1f} ms, effective cores "
          f"{probe.speed.effective_cores:.2f}, {probe.duration_s:.0f} s", file=sys.stderr)


@app.command()
def analyse(
    data: Annotated[Path, typer.Argument(help="what `measure` wrote")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Errors and coverage of each calibration's predictions (with and without the probe)."""
    print(json.dumps({"data": str(data)}) if json_out else f"{data}: analysis not yet written")


if __name__ == "__main__":
    app()
