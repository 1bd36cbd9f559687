"""Reading and writing measurement datasets (docs/data-format.md).

Rows are appended to JSON lines and flushed as they happen; Parquet is a compaction of them, so an
interrupted run keeps everything it measured.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from measure.harness.records import InstanceRow, Manifest
from sim.errors import UserError
from sim.files import FileError, load_yaml_model

if TYPE_CHECKING:  # pandas is imported where a frame is made: `measure predict` never needs it
    import pandas as pd

PARQUET = "instances.parquet"
RUNS = "runs"

COLUMNS: dict[str, pa.DataType] = {
    "run_id": pa.string(), "boot": pa.string(), "accel": pa.string(), "count": pa.int64(),
    "interval_ms": pa.float64(), "memory_mb": pa.int64(), "repeat": pa.int64(),
    "instance": pa.int64(), "planned_launch_s": pa.float64(), "launch_s": pa.float64(),
    "pid": pa.int64(), "marker_s": pa.float64(), "ready_s": pa.float64(), "cpu_s": pa.float64(),
    "wait_s": pa.float64(), "status": pa.string(), "exit_code": pa.int64(),
    "stderr_tail": pa.string(),
    "cpu_end_s": pa.float64(), "end_s": pa.float64(),
}


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def write_failure(path: Path, err: OSError) -> UserError:
    """The one line for a dataset file that could not be written (a full disk, most often)."""
    return UserError(f"cannot write {path}: {(err.strerror or str(err)).lower()}; free space "
                     "or choose another --out")


class RunWriter:
    """Appends one run's rows to runs/<run_id>.jsonl, flushing each line to the kernel.

    A failed write (the disk filled) does not raise from append(): the burst must still stop
    and reap its instances. It is kept in `error` for the burst to end on, and later rows are
    not written (they stay in the burst's memory).
    """

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self.error: UserError | None = None
        self.path = root / RUNS / f"{manifest.run_id}.jsonl"
        try:
            (root / RUNS).mkdir(parents=True, exist_ok=True)
            self.write_manifest()
            self._rows: IO[str] = open(self.path, "a")  # noqa: SIM115
        except OSError as err:
            raise write_failure(root / RUNS, err) from None

    def write_manifest(self) -> None:
        path = self.root / RUNS / f"{self.manifest.run_id}.manifest.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(self.manifest.model_dump_json(indent=2))
        except OSError:
            tmp.unlink(missing_ok=True)  # (the previous manifest stays whole)
            raise
        os.replace(tmp, path)

    def append(self, row: InstanceRow) -> None:
        if self.error is not None:
            return
        data = {k: _clean(v) for k, v in row.to_json().items()}
        try:
            self._rows.write(json.dumps(data) + "\n")
            self._rows.flush()
        except OSError as err:
            self.error = write_failure(self.path, err)

    def close(self) -> None:
        try:
            self._rows.close()
        except OSError as err:  # the buffered tail of a failed write
            self.error = self.error or write_failure(self.path, err)


def check_writable(root: Path) -> None:
    """Fail early, before anything is launched, if the dataset directory cannot be written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to --out {root}: {err.strerror}; choose another "
                        "directory") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A run's rows. A harness killed mid-write leaves its LAST line torn: the rows before it
    count. A bad line with rows after it is damage, not an interruption: refused, since later
    rows must neither be dropped silently nor trusted."""
    rows: list[dict[str, Any]] = []
    torn: int | None = None
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            if torn is not None:
                raise UserError(f"{path}:{torn}: a damaged line with rows after it (not a run "
                                "cut short); repair the line or re-measure the run")
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                torn = number
    return rows


def incomplete_runs(instances: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Runs with fewer instance rows than their count (cut short): run_id -> (rows, count)."""
    out: dict[str, tuple[int, int]] = {}
    if instances.empty or "count" not in instances:  # (a bare table may not say its count)
        return out
    for run_id, rows in instances.groupby("run_id", sort=True):
        count = rows["count"].max()
        if count == count and len(rows) < int(count):
            out[str(run_id)] = (len(rows), int(count))
    return out


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with every documented column, later rows of an instance winning."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for name in COLUMNS:
        if name not in frame:
            frame[name] = None
    if not frame.empty:
        # A run writes an instance's row at its outcome and may add its end-of-burst CPU later
        # as a second, partial row: merge them, the later non-null value winning.
        frame = frame.groupby(["run_id", "instance"], sort=True, as_index=False).last()
    return frame


def _column(values: list[Any], dtype: pa.DataType) -> pa.Array:
    """pandas turns missing ints into NaN; Arrow wants them null and the rest as int."""
    values = [_clean(v) for v in values]
    if pa.types.is_integer(dtype):
        values = [None if v is None else int(v) for v in values]
    return pa.array(values, type=dtype)


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.table({name: _column(frame[name].tolist(), dtype) for name, dtype in COLUMNS.items()})


def compact(root: Path) -> Path:
    """Rewrite instances.parquet from every run's JSON lines (atomic replace)."""
    rows: list[dict[str, Any]] = []
    for path in sorted((root / RUNS).glob("*.jsonl")):
        rows.extend(_read_jsonl(path))
    out = root / PARQUET
    tmp = root / (PARQUET + ".tmp")
    try:
        pq.write_table(_table(_frame(rows)), tmp, compression="zstd")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return out


def load_manifests(path: Path) -> list[Manifest]:
    """Every run manifest of a dataset directory."""
    return [load_yaml_model(p, Manifest, error=FileError)
            for p in sorted((path / RUNS).glob("*.manifest.json"))]


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as err:  # cut short, corrupted, not Parquet
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path} is not a readable Parquet file ({reason}); restore it, or "
                        "delete it to rebuild it from runs/*.jsonl") from None


def load_instances(path: Path | str) -> pd.DataFrame:
    """All instance rows of a dataset directory (or a bare Parquet/JSONL file).

    Reads the compacted Parquet and any JSON-lines rows it does not hold yet (a run that was
    interrupted before compaction), so nothing that was measured is lost. A dataset without a
    single row (its runs were killed before any instance ended) is refused.
    """
    instances = _load(Path(path))
    if instances.empty:
        raise UserError(f"{path} holds no instance rows: its runs stopped before any instance "
                        "ended; measure again")
    return instances


def _load(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"dataset {path} does not exist; give a directory written by "
                        "`measure burst` or `measure sweep`")
    if path.is_file():
        if path.suffix == ".parquet":
            return _read_parquet(path)
        if path.suffix == ".jsonl":
            return _frame(_read_jsonl(path))
        raise UserError(f"{path} is not a dataset: expected a directory, .parquet or .jsonl")
    runs = sorted((path / RUNS).glob("*.jsonl")) if (path / RUNS).is_dir() else []
    parquet = path / PARQUET
    if not runs and not parquet.exists():
        raise UserError(f"{path} holds no measurements (no {PARQUET} and no {RUNS}/*.jsonl)")
    if not runs:
        return _read_parquet(parquet)
    rows: list[dict[str, Any]] = []
    for run in runs:
        rows.extend(_read_jsonl(run))
    return _table(_frame(rows)).to_pandas()
