"""Inputs of a calibration: bursts (runs) read from summary tables or per-instance datasets.

Every defect of an input becomes one CalibrationInputError line naming the file and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from measure.harness.dataset import load_instances, load_manifests
from measure.harness.records import LauncherMode, launcher_mode
from sim.errors import UserError
from sim.model.burst_stats import first_ready, last_ready
from sim.model.calibration import Configuration, DataFile, HostInfo, InputKind
from sim.model.units import seconds

SUMMARY_COLUMNS = ("count", "interval_ms", "memory_mb", "first_ready_s", "all_ready_s")
INSTANCE_COLUMNS = (
    "run_id", "boot", "accel", "count", "interval_ms", "memory_mb", "instance",
    "launch_s", "ready_s", "cpu_s", "status",
)

ConfigKey = tuple[int, float]
"""(count, interval_ms): what a configuration is; memory is a replicate (the study's finding 1)."""


class CalibrationInputError(UserError):
    """Missing, inconsistent or wrongly shaped calibration data (a user's mistake)."""


@dataclass(frozen=True)
class Burst:
    """One measured run: its configuration, first and all-ready, and per-instance rows if any."""

    run_id: str
    count: int
    interval_ms: float
    first_ready_s: float
    all_ready_s: float
    launch_s: np.ndarray | None = field(default=None, compare=False)
    """Per instance, in launch order: when each process was started (burst start = 0)."""
    ready_s: np.ndarray | None = field(default=None, compare=False)
    """Per instance: ready time, NaN for instances that never became ready."""
    cpu_s: np.ndarray | None = field(default=None, compare=False)
    """Per instance: measured CPU seconds of the QEMU process (NaN where unknown)."""
    idle_cpu_s: np.ndarray | None = field(default=None, compare=False)
    """Per instance: CPU seconds used between ready and the end of the run (NaN where unknown)."""
    idle_s: np.ndarray | None = field(default=None, compare=False)
    """Per instance: seconds between ready and the end of the run (NaN where unknown)."""
    launcher: LauncherMode = "realtime"
    """The launcher the run had (its manifest's harness_sched; summary tables: realtime)."""

    @property
    def key(self) -> ConfigKey:
        return (self.count, self.interval_ms)


@dataclass(frozen=True)
class CalibrationData:
    """All runs of one calibration, with what the provenance needs to say about them."""

    kind: InputKind
    bursts: tuple[Burst, ...]
    files: tuple[DataFile, ...]
    host: HostInfo
    boot: str | None = None
    accel: str | None = None

    def of_launcher(self, launcher: LauncherMode) -> CalibrationData:
        """The same inputs restricted to the runs of one launcher."""
        return dataclasses.replace(
            self, bursts=tuple(b for b in self.bursts if b.launcher == launcher))

    def keys(self) -> list[ConfigKey]:
        return sorted({burst.key for burst in self.bursts})

    def configurations(self) -> list[Configuration]:
        runs: dict[ConfigKey, int] = {}
        for burst in self.bursts:
            runs[burst.key] = runs.get(burst.key, 0) + 1
        return [
            Configuration(count=count, interval_ms=interval, runs=runs[(count, interval)])
            for count, interval in sorted(runs)
        ]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_summary_table(path: Path) -> tuple[list[Burst], DataFile]:
    """Read a table with the columns of the 2016 study's CSV; one row = one run."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise CalibrationInputError(f"{path}: no such file; check the path") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CalibrationInputError(
            f"{path}: cannot read as CSV ({str(exc).splitlines()[0]}); "
            f"give a CSV with columns {', '.join(SUMMARY_COLUMNS)}"
        ) from None
    missing = [column for column in SUMMARY_COLUMNS if column not in table.columns]
    if missing:
        raise CalibrationInputError(
            f"{path}: missing columns {', '.join(missing)}; "
            f"a summary table needs {', '.join(SUMMARY_COLUMNS)}"
        )
    if table.empty:
        raise CalibrationInputError(f"{path}: no rows; give at least one measured configuration")
    bursts = []
    for index, row in enumerate(table.itertuples(index=False), start=2):
        where = f"{path}:{index}"
        values = {column: getattr(row, column) for column in SUMMARY_COLUMNS}
        for column, value in values.items():
            if not isinstance(value, int | float | np.number) or not math.isfinite(float(value)):
                raise CalibrationInputError(
                    f"{where}: {column} = {value!r} is not a finite number; fix or drop the row"
                )
        count, interval = float(values["count"]), float(values["interval_ms"])
        first, last = float(values["first_ready_s"]), float(values["all_ready_s"])
        if count < 1 or count != int(count):
            raise CalibrationInputError(f"{where}: count = {count:g} must be a whole number >= 1")
        if interval < 0:
            raise CalibrationInputError(f"{where}: interval_ms = {interval:g} must be >= 0")
        if not 0 < first <= last:
            raise CalibrationInputError(
                f"{where}: first_ready_s = {first:g}, all_ready_s = {last:g}: "
                "need 0 < first <= all; fix or drop the row"
            )
        if last < seconds((count - 1) * interval):
            raise CalibrationInputError(
                f"{where}: all_ready_s = {last:g} is before the last launch "
                f"({seconds((count - 1) * interval):g} s); check the units (seconds, ms)"
            )
        bursts.append(
            Burst(
                run_id=f"{path.name}:{index}",
                count=int(count),
                interval_ms=interval,
                first_ready_s=first,
                all_ready_s=last,
            )
        )
    data_file = DataFile(
        path=str(path), sha256=sha256_of(path), kind="summary_table", rows=len(bursts)
    )
    return bursts, data_file


def bursts_from_instances(instances: pd.DataFrame, source: str) -> list[Burst]:
    """Group per-instance rows (docs/data-format.md) into runs, checking each run's shape."""
    missing = [column for column in INSTANCE_COLUMNS if column not in instances.columns]
    if missing:
        raise CalibrationInputError(
            f"{source}: missing instance columns {', '.join(missing)}; "
            "give a dataset written by `measure burst` or `measure sweep`"
        )
    bursts = []
    for run_id, rows in instances.groupby("run_id", sort=True):
        rows = rows.sort_values("instance")
        count = int(rows["count"].iloc[0])
        interval = float(rows["interval_ms"].iloc[0])
        where = f"{source}: run {run_id}"
        if rows["count"].nunique() != 1 or rows["interval_ms"].nunique() != 1:
            raise CalibrationInputError(f"{where}: count or interval_ms varies within the run")
        if len(rows) != count or list(rows["instance"]) != list(range(count)):
            raise CalibrationInputError(
                f"{where}: has {len(rows)} instance rows for count {count} "
                "(interrupted run?); drop the run or re-measure it"
            )
        ready_rows = rows["status"] == "ready"
        ready = np.where(ready_rows, rows["ready_s"].to_numpy(dtype=float), np.nan)
        launch = rows["launch_s"].to_numpy(dtype=float)
        if not ready_rows.any():
            raise CalibrationInputError(f"{where}: no instance became ready; re-measure the run")
        if not np.all(np.isfinite(ready[ready_rows.to_numpy()])):
            raise CalibrationInputError(f"{where}: a ready instance has no ready_s")
        started = rows["status"] != "spawn_failed"
        launch = np.where(started, launch, np.nan)
        idle = _idle_columns(rows, ready)
        bursts.append(
            Burst(
                run_id=str(run_id),
                count=count,
                interval_ms=interval,
                first_ready_s=float(first_ready(ready[np.isfinite(ready)])),
                all_ready_s=float(last_ready(ready[np.isfinite(ready)])),
                launch_s=launch,
                ready_s=ready,
                cpu_s=rows["cpu_s"].to_numpy(dtype=float),
                idle_cpu_s=idle.get("idle_cpu_s"),
                idle_s=idle.get("idle_s"),
            )
        )
    return bursts


def _idle_columns(rows: pd.DataFrame, ready: np.ndarray) -> dict[str, np.ndarray]:
    """What a ready instance costs while it waits for the end of the run; empty for datasets
    written before the harness recorded cpu_end_s and end_s."""
    if "cpu_end_s" not in rows.columns or "end_s" not in rows.columns:
        return {}
    return {
        "idle_cpu_s": rows["cpu_end_s"].to_numpy(dtype=float) - rows["cpu_s"].to_numpy(dtype=float),
        "idle_s": rows["end_s"].to_numpy(dtype=float) - ready,
    }


def load_calibration_data(
    paths: Sequence[Path], host: HostInfo | None = None
) -> CalibrationData:
    """Read every input; all must be of one kind (summary tables or per-instance datasets)."""
    if not paths:
        raise CalibrationInputError("no dataset given; pass summary CSVs or dataset directories")
    kinds = {_kind_of(path) for path in paths}
    if len(kinds) > 1:
        raise CalibrationInputError(
            "mixed inputs: summary tables and per-instance datasets; calibrate them separately"
        )
    kind = kinds.pop()
    bursts: list[Burst] = []
    files: list[DataFile] = []
    if kind == "summary_table":
        for path in paths:
            table_bursts, data_file = read_summary_table(path)
            bursts.extend(table_bursts)
            files.append(data_file)
        resolved_host = host or HostInfo(source="stated", description="not stated")
        return CalibrationData(kind, tuple(bursts), tuple(files), resolved_host)
    return _load_instance_datasets(paths, host)


def _kind_of(path: Path) -> InputKind:
    if path.suffix.lower() == ".csv":
        return "summary_table"
    if path.is_dir() or path.suffix.lower() == ".parquet":
        return "instances"
    if not path.exists():
        raise CalibrationInputError(f"{path}: no such file or directory; check the path")
    raise CalibrationInputError(
        f"{path}: not a summary CSV, a .parquet or a dataset directory; "
        "pass what `measure burst`/`measure sweep` wrote, or a CSV like the study's"
    )


def _load_instance_datasets(paths: Sequence[Path], host: HostInfo | None) -> CalibrationData:
    bursts: list[Burst] = []
    files: list[DataFile] = []
    hosts: list[dict[str, object]] = []
    boots: set[str] = set()
    accels: set[str] = set()
    for path in paths:
        if not path.exists():
            raise CalibrationInputError(f"{path}: no such file or directory; check the path")
        try:
            instances = load_instances(path)
        except UserError as exc:
            raise CalibrationInputError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise CalibrationInputError(
                f"{path}: cannot read the dataset ({exc}); check it was written by measure"
            ) from None
        if instances.empty:
            raise CalibrationInputError(f"{path}: the dataset has no instance rows")
        found = bursts_from_instances(instances, str(path))
        boots.update(str(value) for value in instances["boot"].unique())
        accels.update(str(value) for value in instances["accel"].unique())
        parquet = path / "instances.parquet" if path.is_dir() else path
        if parquet.exists():
            files.append(
                DataFile(
                    path=str(parquet), sha256=sha256_of(parquet), kind="instances",
                    rows=len(instances),
                )
            )
        if path.is_dir():
            try:
                manifests = load_manifests(path)
            except (OSError, ValueError) as exc:
                raise CalibrationInputError(
                    f"{path}: a run manifest is unreadable ({str(exc).splitlines()[0]})"
                ) from None
            hosts.extend(manifest.host.model_dump() for manifest in manifests)
            modes = {m.run_id: launcher_mode(m.harness_sched) for m in manifests}
            found = [dataclasses.replace(b, launcher=modes.get(b.run_id, "realtime"))
                     for b in found]
        bursts.extend(found)
    if len(boots) > 1 or len(accels) > 1:
        raise CalibrationInputError(
            f"inputs mix boot paths {sorted(boots)} or accelerators {sorted(accels)}; "
            "calibrate each boot path separately"
        )
    if not files:
        raise CalibrationInputError("no instances.parquet found; compact the dataset first")
    return CalibrationData(
        "instances", tuple(bursts), tuple(files), host or _host_from_manifests(hosts),
        boot=boots.pop(), accel=accels.pop(),
    )


def _host_from_manifests(hosts: list[dict[str, object]]) -> HostInfo:
    if not hosts:
        return HostInfo(source="stated", description="no manifests found")
    first = hosts[0]
    cpu_models = {str(h.get("cpu_model")) for h in hosts}
    if len(cpu_models) > 1:
        raise CalibrationInputError(
            f"runs come from different hosts ({sorted(cpu_models)}); calibrate each host alone"
        )
    cores = first.get("cores")
    memory = first.get("memory_mb")
    return HostInfo(
        source="manifests",
        description=f"{first.get('cpu_model')}, {cores} CPUs, kernel {first.get('kernel')}",
        cpu_model=str(first.get("cpu_model")),
        cores=int(cores) if isinstance(cores, int | float) else None,
        memory_mb=int(memory) if isinstance(memory, int | float) else None,
        kernel=str(first.get("kernel")) if first.get("kernel") is not None else None,
    )
