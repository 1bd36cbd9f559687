"""Datasets as runs and disks leave them: instances.parquet cut short or corrupted, a run's JSON
lines cut mid-line by an interrupted harness, a missing or truncated manifest. `measure plot`,
`measure calibrate` and `measure validate` (`sim validate` before it moved) either produce their
result or refuse the dataset in one line naming it; never a traceback, and never a run shown as
complete when rows of it are missing.

The datasets are built from the shipped measurements (calibration/data/host-bios) in the
documented format (docs/data-format.md): no guest boots here.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fuzz_support import (
    REPO,
    Done,
    assert_no_traceback,
    assert_one_line_naming,
    fuzz_settings,
    measure,
    run_in_process,
    sim,
)
from hypothesis import example, given
from hypothesis import strategies as st

SOURCE = REPO / "calibration" / "data" / "host-bios" / "instances.parquet"
CALIBRATION = REPO / "calibration" / "bios.json"


def _runs() -> pd.DataFrame:
    """One run of each of six configurations of the shipped bios dataset (3 counts x 2
    intervals: enough for the calibration's cross-validation)."""
    rows = pd.read_parquet(SOURCE)
    rows = rows[rows.interval_ms.isin([1.0, 10.0])]
    keep = rows.groupby(["count", "interval_ms"]).run_id.min()
    return rows[rows.run_id.isin(set(keep))].reset_index(drop=True)


RUNS = _runs()


def _manifest(run: pd.DataFrame) -> dict[str, Any]:
    """The manifest a finished run leaves (docs/data-format.md)."""
    first = run.iloc[0]
    ready = run.ready_s[run.status == "ready"]
    return {
        "run_id": str(first.run_id), "bootstorm_version": "0.1.0",
        "started_at": "2026-11-30T20:00:00.000+00:00",
        "host": {"hostname": "fuzz", "cpu_model": "test cpu", "cores": 2, "memory_mb": 4096,
                 "kernel": "6.1", "nested_virt": True, "kvm_usable": True, "kvm_reason": "ok"},
        "qemu_path": "/usr/bin/qemu-system-x86_64", "qemu_version": "QEMU emulator 8.2",
        "qemu_argv": ["qemu-system-x86_64"], "boot": str(first.boot), "accel": str(first.accel),
        "count": int(first["count"]), "interval_ms": float(first.interval_ms),
        "memory_mb": int(first.memory_mb), "repeat": int(first["repeat"]), "timeout_s": 60.0,
        "ended_at": "2026-11-30T20:00:05.000+00:00", "outcome": "complete",
        "status_counts": {str(k): int(v) for k, v in run.status.value_counts().items()},
        "first_ready_s": float(ready.min()), "all_ready_s": float(ready.max()),
    }


def _jsonl(run: pd.DataFrame) -> bytes:
    lines = []
    for record in run.to_dict(orient="records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in record.items()}
        lines.append(json.dumps(clean, default=str))
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Damage:
    kind: str
    cut: float = 0.5
    """Where in the damaged file (fraction of its length) the damage sits."""
    junk: bytes = b""

    @property
    def loses_rows(self) -> bool:
        """Rows of a run are gone (whatever remains must not pass for a complete run)."""
        return self.kind in ("jsonl_cut", "jsonl_junk_line")


DAMAGES = st.builds(
    Damage,
    kind=st.sampled_from(["parquet_cut", "parquet_flip", "parquet_empty", "parquet_junk",
                          "jsonl_cut", "jsonl_junk_line", "manifest_missing", "manifest_cut",
                          "manifest_junk", "no_runs_no_parquet"]),
    cut=st.floats(min_value=0.0, max_value=0.999),
    junk=st.binary(min_size=1, max_size=16),
)


def build_dataset(root: Path, damage: Damage) -> Path:
    """A dataset directory with the runs, then the damage applied."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "runs").mkdir(parents=True)
    parquet_kinds = damage.kind.startswith("parquet")
    if parquet_kinds:  # a compacted dataset: Parquet only (like the shipped ones)
        RUNS.to_parquet(root / "instances.parquet")
    else:  # an interrupted one: JSON lines and manifests, not compacted yet
        for run_id, run in RUNS.groupby("run_id", sort=True):
            (root / "runs" / f"{run_id}.jsonl").write_bytes(_jsonl(run))
            (root / "runs" / f"{run_id}.manifest.json").write_text(
                json.dumps(_manifest(run), indent=2))
    last_run = str(sorted(RUNS.run_id.unique())[-1])
    target = {
        "parquet": root / "instances.parquet",
        "jsonl": root / "runs" / f"{last_run}.jsonl",
        "manifest": root / "runs" / f"{last_run}.manifest.json",
    }.get(damage.kind.split("_")[0])
    if target is None:  # no_runs_no_parquet
        shutil.rmtree(root / "runs")
        return root
    data = target.read_bytes()
    at = int(damage.cut * len(data))
    if damage.kind.endswith("_cut"):
        if damage.kind == "jsonl_cut":  # strictly inside a line: its row is torn
            at = max(at, 1)
            if data[at - 1:at] == b"\n":
                at += 5
            if data[at:at + 1] == b"\n":
                at -= 1
        target.write_bytes(data[:at])
    elif damage.kind == "parquet_flip":
        target.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    elif damage.kind == "parquet_empty":
        target.write_bytes(b"")
    elif damage.kind.endswith("_junk"):
        target.write_bytes(data[:at] + damage.junk + data[at:])
    elif damage.kind == "jsonl_junk_line":
        lines = data.split(b"\n")
        lines.insert(max(1, int(damage.cut * len(lines))), b"{\"run_id\": \"torn")
        target.write_bytes(b"\n".join(lines))
    elif damage.kind == "manifest_missing":
        target.unlink()
    return root


def assert_refused_or_ok(done: Done, dataset: Path) -> bool:
    """True when the command succeeded; False when it refused the dataset in one line."""
    assert_no_traceback(done)
    if done.code == 0:
        return True
    assert_one_line_naming(done, dataset)
    return False


@fuzz_settings(8)
@given(damage=DAMAGES)
@example(damage=Damage("parquet_cut", 0.5))
@example(damage=Damage("jsonl_cut", 0.97))
def test_plot_draws_or_refuses_a_damaged_dataset(damage: Damage, folder: Path) -> None:
    dataset = build_dataset(folder / "plot-ds", damage)
    plots = folder / "plots"
    shutil.rmtree(plots, ignore_errors=True)
    done = run_in_process("measure", "plot", dataset, "--out", plots)
    if assert_refused_or_ok(done, dataset):
        written = [Path(line) for line in done.stdout.splitlines() if line.strip()]
        assert written, "exit 0 but no figure"
        assert all(p.is_file() and p.stat().st_size > 0 for p in written), done.describe()


@functools.cache
def _validate_program() -> str:
    """`measure validate` once it moved there, `sim validate` before (same options)."""
    done = run_in_process("measure", "--help")
    return "measure" if " validate" in done.stdout else "sim"


def validate(*args: str | Path, in_process: bool = True) -> Done:
    program = _validate_program()
    if in_process:
        return run_in_process(program, "validate", *args)
    return (sim if program == "sim" else measure)("validate", *args, timeout=120)


@fuzz_settings(8)
@given(damage=DAMAGES)
@example(damage=Damage("jsonl_cut", 0.97))
@example(damage=Damage("jsonl_junk_line", 0.3))
@example(damage=Damage("manifest_cut", 0.5))
def test_validate_compares_only_whole_runs_or_refuses(damage: Damage, folder: Path) -> None:
    dataset = build_dataset(folder / "validate-ds", damage)
    done = validate(dataset, "--calibration", CALIBRATION, "--json")
    if not assert_refused_or_ok(done, dataset):
        return
    counts = RUNS.groupby("run_id")["count"].first()
    for result in json.loads(done.stdout):
        # A run missing rows must not be compared as if it were the whole burst.
        assert result["count"] == counts[result["run_id"]], (
            f"run {result['run_id']} validated on {result['count']} of "
            f"{counts[result['run_id']]} instances after {damage}")
        assert all(math.isfinite(v) for v in result["real"].values())


@fuzz_settings(5)
@given(damage=DAMAGES.filter(lambda d: d.kind != "manifest_missing"))
@example(damage=Damage("jsonl_cut", 0.97))
@example(damage=Damage("parquet_cut", 0.4))
def test_calibrate_refuses_a_damaged_dataset_in_one_line(damage: Damage, folder: Path) -> None:
    dataset = build_dataset(folder / "calibrate-ds", damage)
    out = folder / "fit.json"
    out.unlink(missing_ok=True)
    done = run_in_process("measure", "calibrate", dataset, "--out", out, "--cores", "2",
                          "--families", "ps_delay", "--bootstrap", "0", "--draws", "1")
    if assert_refused_or_ok(done, dataset):
        assert not damage.loses_rows, "a fit used a run with missing rows"
        assert out.is_file()
    else:
        assert not out.exists(), "a refused calibration left a file behind"


@pytest.mark.parametrize("damage", [Damage("parquet_cut", 0.5), Damage("jsonl_cut", 0.97)])
def test_plot_and_validate_in_a_subprocess_keep_the_contract(damage: Damage, folder: Path
                                                             ) -> None:
    dataset = build_dataset(folder / "cli-ds", damage)
    done = measure("plot", dataset, "--out", folder / "cli-plots", timeout=120)
    assert_refused_or_ok(done, dataset)
    done = validate(dataset, "--calibration", CALIBRATION, "--json", in_process=False)
    assert_refused_or_ok(done, dataset)
