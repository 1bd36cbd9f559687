"""The `measure` command: real burst boots on this host, their figures, and model calibration."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from measure.harness.burst import (
    BurstInterrupted,
    BurstSpec,
    default_timeout_s,
    fixed_interval,
    run_burst,
    summarize,
)
from measure.harness.dataset import check_writable, load_instances
from measure.harness.guard import check_memory, estimate_memory
from measure.harness.guest import ACCELS, BOOT_PATHS, Accel, BootPath, find_qemu
from measure.harness.host import host_info, qemu_version
from sim.entry import run_app
from sim.errors import UserError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help=__doc__)


def _boot(value: str) -> BootPath:
    if value not in BOOT_PATHS:
        raise UserError(f"unknown boot path {value!r}; use one of: {', '.join(BOOT_PATHS)}")
    return value


def _accel(value: str) -> Accel:
    if value not in ACCELS:
        raise UserError(f"unknown accelerator {value!r}; use one of: {', '.join(ACCELS)}")
    return value


def _check_host(accel: Accel) -> None:
    find_qemu()
    if accel == "kvm":
        info = host_info()
        if not info.kvm_usable:
            raise UserError(f"/dev/kvm is not usable: {info.kvm_reason}; fix that or pass "
                            "--accel tcg")


def _check_burst_args(count: int, interval_ms: float, memory_mb: int, repeat: int) -> None:
    if count < 1:
        raise UserError(f"--count must be at least 1 (got {count})")
    if interval_ms < 0:
        raise UserError(f"--interval-ms must be 0 or more (got {interval_ms:g})")
    if not 2 <= memory_mb <= 65536:
        raise UserError(f"--memory-mb must be between 2 and 65536 (got {memory_mb})")
    if repeat < 1:
        raise UserError(f"--repeat must be at least 1 (got {repeat})")


def _parse_list(text: str, kind: type, name: str) -> list[Any]:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated numbers (got {text!r})") from None
    if not values:
        raise UserError(f"{name} is empty")
    return values


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@app.command()
def info(json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False) -> None:
    """What this host can do: KVM, QEMU, nested virtualisation, largest safe burst."""
    host = host_info()
    data: dict[str, Any] = {"host": host.model_dump()}
    try:
        qemu = find_qemu()
        data["qemu"] = {"path": qemu, "version": qemu_version(qemu)}
        accel: Accel = "kvm" if host.kvm_usable else "tcg"
        for boot in BOOT_PATHS:
            est = estimate_memory(boot, accel, 16)
            data[f"largest_safe_burst_{boot}"] = est.largest_safe()
            data[f"memory_per_instance_mb_{boot}"] = round(est.per_instance_mb, 1)
    except UserError as err:
        data["qemu"] = {"error": str(err)}
    if json_out:
        print(json.dumps(data, indent=2))
        return
    print(f"host: {host.cpu_model}, {host.cores} cores, {host.memory_mb} MiB, "
          f"kernel {host.kernel}")
    print(f"kvm: {'usable' if host.kvm_usable else 'NOT usable'} ({host.kvm_reason})")
    print(f"nested virtualisation: {'yes' if host.nested_virt else 'no'}")
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
    realtime: Annotated[bool, typer.Option(help="run the harness under SCHED_FIFO")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="JSON summaries on stdout")] = False,
) -> None:
    """Launch COUNT instances INTERVAL ms apart and time each to its ready string."""
    b, a = _boot(boot), _accel(accel)
    _check_burst_args(count, interval_ms, memory_mb, repeat)
    _check_host(a)
    check_writable(out)
    est = estimate_memory(b, a, memory_mb)
    check_memory(count, est)
    summaries = []
    for r in range(repeat):
        spec = BurstSpec(boot=b, accel=a, memory_mb=memory_mb,
                         planned_s=fixed_interval(count, interval_ms), interval_ms=interval_ms,
                         repeat=r, timeout_s=timeout_s or default_timeout_s(b, a, count))
        result = run_burst(spec, out, memory_estimate_mb=est.per_instance_mb, realtime=realtime)
        s = {"run_id": result.run_id, **summarize(result.rows),
             "status_counts": result.manifest.status_counts}
        summaries.append(s)
        if not json_out:
            fr, ar = s["first_ready_s"], s["all_ready_s"]
            print(f"{result.run_id}: {s['ready']}/{count} ready; first "
                  f"{fr if fr is None else f'{fr:.3f}'} s, all "
                  f"{ar if ar is None else f'{ar:.3f}'} s; launch lateness p99 "
                  f"{s['launch_late_p99_ms']:.2f} ms")
        if r + 1 < repeat:
            time.sleep(settle_s)
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
) -> None:
    """Run a grid of bursts in random order into one dataset; resumes where it stopped."""
    from rich.progress import Progress

    from measure.harness.sweep import grid, run_sweep

    boots = [_boot(b.strip()) for b in boot.split(",")]
    a = _accel(accel)
    cs = _parse_list(counts, int, "--counts")
    iv = _parse_list(intervals_ms, float, "--intervals-ms")
    ms = _parse_list(memory_mb, int, "--memory-mb")
    for c in cs:
        for i in iv:
            for m in ms:
                _check_burst_args(c, i, m, repeat)
    _check_host(a)
    check_writable(out)
    for b in boots:
        for m in ms:
            check_memory(max(cs), estimate_memory(b, a, m))
    points = grid(boots, a, cs, iv, ms, repeat, seed)
    with Progress(console=None, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("sweep", total=len(points))

        def on_done(point: Any, result: Any) -> None:
            bar.advance(task)
            if result is not None:
                m = result.manifest
                _say(f"{m.run_id}: first {m.first_ready_s} all {m.all_ready_s}")

        ran = run_sweep(points, out, settle_s=settle_s, on_done=on_done)
    _say(f"sweep: {ran} bursts run, {len(points) - ran} already done; dataset {out}")


@app.command()
def replay(
    schedule: Annotated[Path, typer.Argument(help="schedule JSON written by `sim schedule`")],
    out: Annotated[Path, typer.Option(help="dataset directory (created; runs are added)")],
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
    accel: Annotated[str, typer.Option(help="kvm | tcg")] = "kvm",
    repeat: Annotated[int, typer.Option(help="times to replay it, one after the other")] = 1,
    settle_s: Annotated[float, typer.Option(help="pause between repeats")] = 2.0,
    json_out: Annotated[bool, typer.Option("--json", help="JSON summaries on stdout")] = False,
) -> None:
    """Execute a simulated launch schedule on this host, with the same harness as `burst`."""
    from measure.harness.replay import replay as run_replay
    from sim.model.schedule import load_schedule

    plan = load_schedule(schedule)
    b, a = _boot(boot), _accel(accel)
    if repeat < 1:
        raise UserError(f"--repeat must be at least 1 (got {repeat})")
    if not 2 <= plan.memory_mb <= 65536:
        raise UserError(f"{schedule}: memory_mb must be between 2 and 65536")
    _check_host(a)
    check_writable(out)
    est = estimate_memory(b, a, plan.memory_mb)
    check_memory(len(plan.launches), est)
    summaries = []
    for r in range(repeat):
        result = run_replay(plan, schedule, out, b, a, repeat=r,
                            memory_estimate_mb=est.per_instance_mb)
        s = {"run_id": result.run_id, **summarize(result.rows)}
        summaries.append(s)
        if not json_out:
            print(f"{result.run_id}: {s['ready']}/{len(plan.launches)} ready; first "
                  f"{s['first_ready_s']} s, all {s['all_ready_s']} s")
        if r + 1 < repeat:
            time.sleep(settle_s)
    if json_out:
        print(json.dumps(summaries, indent=2))


@app.command()
def plot(
    dataset: Annotated[Path, typer.Argument(help="dataset directory or .parquet")],
    out: Annotated[Path | None, typer.Option(help="where PNGs go (default DATASET/plots)")] = None,
) -> None:
    """Draw the study's figures from a dataset as PNG."""
    from measure.plot import plot_dataset

    instances = load_instances(dataset)
    target = out or (dataset if dataset.is_dir() else dataset.parent) / "plots"
    for path in plot_dataset(instances, target):
        print(path)


def _register_optional_commands() -> None:
    """Commands that live in their own modules (calibration, replay)."""
    import importlib

    try:
        calibrate_cli = importlib.import_module("measure.cli.calibrate")
    except ImportError:
        return
    for name in ("calibrate", "predict"):
        fn = getattr(calibrate_cli, f"{name}_command", None)
        if fn is not None:
            app.command(name)(fn)


_register_optional_commands()


def _register_probe() -> None:
    from measure.cli.probe import probe_command

    app.command("probe")(probe_command)


_register_probe()


def _interrupted(err: BaseException) -> int:
    print(f"terminated by {err}: every instance was stopped; rows measured so far are kept",
          file=sys.stderr)
    return 143


def main() -> None:
    """Entry point of the `measure` command."""
    run_app(app, {BurstInterrupted: _interrupted})


if __name__ == "__main__":
    main()
