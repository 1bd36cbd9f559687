"""`measure info`, `burst`, `sweep`, `replay` and `plot`: the commands that boot real instances
on this host or draw what they measured. Each checks its options and calls measure.harness."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from measure.harness.burst import BurstSpec, default_timeout_s, fixed_interval
from measure.harness.dataset import load_instances
from measure.harness.guest import BOOT_PATHS
from measure.harness.preflight import (
    accelerator,
    boot_path,
    capabilities,
    check_burst_settings,
    check_memory_mb,
    check_repeat,
    prepare,
)
from measure.harness.records import LauncherMode, parse_launcher
from measure.harness.replay import replay_spec
from measure.harness.sweep import grid, run_in_turn, run_sweep
from sim.errors import UserError
from sim.model.schedule import load_schedule

app = typer.Typer(no_args_is_help=True)


def _parse_list(text: str, kind: type, name: str) -> list[Any]:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated numbers (got {text!r})") from None
    if not values:
        raise UserError(f"{name} is empty")
    return values


def _launcher(launcher: str, realtime: bool | None = None) -> LauncherMode:
    """--launcher realtime|fair|reserved (and the older --realtime/--no-realtime)."""
    mode = parse_launcher(launcher)
    if mode != "realtime" and realtime:
        raise UserError(f"--launcher {mode} and --realtime contradict each other; pass one")
    return "fair" if realtime is False and mode == "realtime" else mode


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@app.command()
def info(json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False) -> None:
    """What this host can do: KVM, QEMU, nested virtualisation, largest safe burst."""
    data = capabilities()
    if json_out:
        print(json.dumps(data, indent=2))
        return
    host = data["host"]
    print(f"host: {host['cpu_model']}, {host['cores']} cores, {host['memory_mb']} MiB, "
          f"kernel {host['kernel']}")
    print(f"kvm: {'usable' if host['kvm_usable'] else 'NOT usable'} ({host['kvm_reason']})")
    print(f"nested virtualisation: {'yes' if host['nested_virt'] else 'no'}")
    print(f"qemu: {data['qemu'].get('version', data['qemu'].get('error'))}")
    for boot in BOOT_PATHS:
        if f"largest_safe_burst_{boot}" in data:
            print(f"largest safe burst ({boot}, 16 MB): {data[f'largest_safe_burst_{boot}']} "
                  f"({data[f'memory_per_instance_mb_{boot}']} MiB per instance)")


@app.command()
def burst(
    count: Annotated[int, typer.Option(help="instances to launch")],
    interval_ms: Annotated[float, typer.Option(help="ms between launches")],
    out: Annotated[Path, typer.Option(help="dataset directory (created; runs are added)")],
    memory_mb: Annotated[int, typer.Option(help="guest memory")] = 16,
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
    accel: Annotated[str, typer.Option(help="kvm | tcg")] = "kvm",
    repeat: Annotated[int, typer.Option(help="bursts to run one after the other")] = 1,
    timeout_s: Annotated[float | None, typer.Option(help="per-burst timeout after the last "
                                                          "launch")] = None,
    settle_s: Annotated[float, typer.Option(help="pause between repeats")] = 2.0,
    launcher: Annotated[str, typer.Option(help="realtime (SCHED_FIFO: launches on time) | fair "
                                               "(normal priority, as a platform's daemon) | "
                                               "reserved (normal priority on a CPU the "
                                               "instances do not use)")
                        ] = "realtime",
    realtime: Annotated[bool | None, typer.Option(help="--no-realtime: same as --launcher fair")
                        ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON summaries on stdout")] = False,
) -> None:
    """Launch COUNT instances INTERVAL ms apart and time each to its ready string."""
    rt = _launcher(launcher, realtime)
    b, a = boot_path(boot), accelerator(accel)
    check_burst_settings(count, interval_ms, memory_mb, repeat)
    est = prepare(out, a, [(b, count, memory_mb)])[b, memory_mb]
    specs = (BurstSpec(boot=b, accel=a, memory_mb=memory_mb,
                       planned_s=fixed_interval(count, interval_ms), interval_ms=interval_ms,
                       repeat=r, timeout_s=timeout_s or default_timeout_s(b, a, count))
             for r in range(repeat))
    summaries = []
    for result, s in run_in_turn(specs, out, settle_s=settle_s,
                                 memory_estimate_mb=est.per_instance_mb, launcher=rt):
        summaries.append(s)
        if not json_out:
            fr, ar = s["first_ready_s"], s["all_ready_s"]
            print(f"{result.run_id}: {s['ready']}/{count} ready; first "
                  f"{fr if fr is None else f'{fr:.3f}'} s, all "
                  f"{ar if ar is None else f'{ar:.3f}'} s; launch lateness p99 "
                  f"{s['launch_late_p99_ms']:.2f} ms")
    if json_out:
        print(json.dumps(summaries, indent=2))
    else:
        _say(f"dataset: {out}")


@app.command()
def sweep(
    out: Annotated[Path, typer.Option(help="dataset directory (resumed if it exists)")],
    counts: Annotated[str, typer.Option(help="comma-separated counts")] = "20,50,100",
    intervals_ms: Annotated[str, typer.Option(help="comma-separated intervals")] = "1,5,10",
    memory_mb: Annotated[str, typer.Option(help="comma-separated guest sizes")] = "16",
    boot: Annotated[str, typer.Option(help="comma-separated boot paths")] = "firmware",
    accel: Annotated[str, typer.Option(help="kvm | tcg")] = "kvm",
    repeat: Annotated[int, typer.Option(help="repeats of each point")] = 3,
    seed: Annotated[int, typer.Option(help="seed of the random point order")] = 0,
    settle_s: Annotated[float, typer.Option(help="pause between bursts")] = 2.0,
    launchers: Annotated[str, typer.Option(help="comma-separated launchers (realtime, fair, "
                                                "reserved): an axis of the grid")] = "realtime",
    settle_memory: Annotated[bool, typer.Option(
        help="start each burst once the host's free page reporting has settled (what a probe "
             "prices; up to a minute after a large burst)")] = False,
) -> None:
    """Run a grid of bursts in random order into one dataset; resumes where it stopped."""
    from rich.progress import Progress

    boots = [boot_path(b.strip()) for b in boot.split(",")]
    a = accelerator(accel)
    cs = _parse_list(counts, int, "--counts")
    iv = _parse_list(intervals_ms, float, "--intervals-ms")
    ms = _parse_list(memory_mb, int, "--memory-mb")
    ls = [parse_launcher(v.strip(), "--launchers") for v in launchers.split(",") if v.strip()]
    for c in cs:
        for i in iv:
            for m in ms:
                check_burst_settings(c, i, m, repeat)
    prepare(out, a, [(b, c, m) for b in boots for c in cs for m in ms])
    points = grid(boots, a, cs, iv, ms, repeat, seed, launchers=ls)
    with Progress(console=None, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("sweep", total=len(points))

        def on_done(point: Any, result: Any) -> None:
            bar.advance(task)
            if result is not None:
                m = result.manifest
                _say(f"{m.run_id}: first {m.first_ready_s} all {m.all_ready_s}")

        ran = run_sweep(points, out, settle_s=settle_s, on_done=on_done,
                        settle_memory=settle_memory)
    _say(f"sweep: {ran} bursts run, {len(points) - ran} already done; dataset {out}")


@app.command()
def replay(
    schedule: Annotated[Path, typer.Argument(help="schedule JSON written by `sim schedule`")],
    out: Annotated[Path, typer.Option(help="dataset directory (created; runs are added)")],
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
    accel: Annotated[str, typer.Option(help="kvm | tcg")] = "kvm",
    repeat: Annotated[int, typer.Option(help="times to replay it, one after the other")] = 1,
    settle_s: Annotated[float, typer.Option(help="pause between repeats")] = 2.0,
    launcher: Annotated[str, typer.Option(help="realtime | fair | reserved (see `measure "
                                               "burst`)")
                        ] = "realtime",
    json_out: Annotated[bool, typer.Option("--json", help="JSON summaries on stdout")] = False,
) -> None:
    """Execute a simulated launch schedule on this host, with the same harness as `burst`."""
    rt = _launcher(launcher)
    plan = load_schedule(schedule)
    b, a = boot_path(boot), accelerator(accel)
    check_repeat(repeat)
    check_memory_mb(plan.memory_mb, f"{schedule}: memory_mb")
    est = prepare(out, a, [(b, len(plan.launches), plan.memory_mb)])[b, plan.memory_mb]
    specs = (replay_spec(plan, schedule, b, a, repeat=r) for r in range(repeat))
    summaries = []
    for result, s in run_in_turn(specs, out, settle_s=settle_s,
                                 memory_estimate_mb=est.per_instance_mb, launcher=rt):
        summaries.append(s)
        if not json_out:
            print(f"{result.run_id}: {s['ready']}/{len(plan.launches)} ready; first "
                  f"{s['first_ready_s']} s, all {s['all_ready_s']} s")
    if json_out:
        print(json.dumps(summaries, indent=2))


@app.command()
def plot(
    dataset: Annotated[Path, typer.Argument(help="dataset directory or .parquet")],
    out: Annotated[Path | None, typer.Option(help="where PNGs go (default DATASET/plots)")] = None,
) -> None:
    """Draw the study's figures from a dataset as PNG."""
    from measure.plot import plot_dataset  # matplotlib: loaded only when drawing

    instances = load_instances(dataset)
    target = out or (dataset if dataset.is_dir() else dataset.parent) / "plots"
    for path in plot_dataset(instances, target):
        print(path)
