"""`measure probe`: how fast this host is today, as a probe file (docs/calibration.md, Transfer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from measure.harness.burst import BurstResult
from measure.harness.dataset import check_writable
from measure.harness.memory import MAX_GB
from measure.harness.preflight import accelerator, boot_path, check_host, check_memory_mb
from measure.harness.probe import PROBE_BURSTS, run_probe
from sim.errors import UserError
from sim.model.units import milliseconds

app = typer.Typer(no_args_is_help=True)


@app.command("probe")
def probe_command(
    out: Annotated[Path, typer.Option(help="probe file to write (JSON)")],
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
    accel: Annotated[str, typer.Option(help="kvm | tcg")] = "kvm",
    memory_mb: Annotated[int, typer.Option(help="guest memory")] = 16,
    bursts: Annotated[int, typer.Option(help="probe bursts")] = PROBE_BURSTS,
    dataset: Annotated[Path | None, typer.Option(
        help="where the probe's bursts are kept (default: OUT without .json, plus -runs)")] = None,
    memory_gb: Annotated[float, typer.Option(
        help="most fresh memory to fault in to price it (until its price steps up); 0: do "
             "not price memory")] = MAX_GB,
    json_out: Annotated[bool, typer.Option("--json", help="the probe as JSON on stdout")] = False,
) -> None:
    """Measure this host's speed (CPU per boot, effective cores, launcher lateness) with a few
    short bursts, and what fresh memory costs a boot here, about 30 s; writes OUT for
    `measure predict --probe`."""
    b, a = boot_path(boot), accelerator(accel)
    check_memory_mb(memory_mb)
    if not 1 <= bursts <= 20:
        raise UserError(f"--bursts {bursts}: give 1 to 20")
    if not 0 <= memory_gb <= 1024:
        raise UserError(f"--memory-gb {memory_gb:g}: give 0 (do not price memory) to 1024")
    check_host(a)
    if out.suffix != ".json":
        raise UserError(f"--out {out}: a probe file ends in .json")
    runs = dataset or out.with_name(out.stem + "-runs")
    check_writable(runs)
    out.parent.mkdir(parents=True, exist_ok=True)

    def progress(result: BurstResult) -> None:
        print(f"probe burst {result.run_id}: all ready at "
              f"{result.manifest.all_ready_s:.3f} s", file=sys.stderr)

    probe = run_probe(b, a, memory_mb, runs, bursts=bursts, memory_gb=memory_gb, on_burst=progress)
    text = probe.model_dump_json(indent=1)
    out.write_text(text + "\n")
    if json_out:
        print(json.dumps(json.loads(text), indent=1))
    else:
        s = probe.speed
        q25, q75 = probe.boot_cpu_quartiles_s
        print(f"{out}: CPU per boot {milliseconds(s.boot_cpu_s):.1f} ms "
              f"[{milliseconds(q25):.1f}-{milliseconds(q75):.1f}], "
              f"effective cores {s.effective_cores:.2f} "
              f"[{probe.effective_cores_range[0]:.2f}-{probe.effective_cores_range[1]:.2f}], "
              f"launch lateness p99 {milliseconds(probe.launch_lateness_p99_s):.2f} ms, "
              f"{probe.duration_s:.0f} s")
        if probe.memory is not None:
            m = probe.memory
            print(f"fresh memory: {1e3 * m.per_instance_gb:.1f} MB per instance, "
                  f"{m.backed_s_per_gb:.2f} s CPU per GB backed, {m.reclaimed_s_per_gb:.2f} "
                  f"reclaimed by the host; {m.backed_gb:.1f} GB backed "
                  f"({m.backed_instances:.0f} instances), then "
                  f"+{milliseconds(m.extra_s):.1f} ms per boot")
