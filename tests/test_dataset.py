"""Rows survive as they are written: appended, flushed, compacted, and readable after a crash."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from measure.harness.dataset import RUNS, RunWriter, compact, load_instances, load_manifests
from measure.harness.host import host_info
from measure.harness.records import InstanceRow, Manifest
from sim.errors import UserError


def _manifest(run_id: str) -> Manifest:
    return Manifest(run_id=run_id, bootstorm_version="t", started_at="now", host=host_info(),
                    qemu_path="q", qemu_version="v", qemu_argv=["q"], boot="firmware",
                    accel="kvm", count=2, interval_ms=5.0, memory_mb=16, repeat=0, timeout_s=1.0)


def _row(run_id: str, i: int, **kw: object) -> InstanceRow:
    row = InstanceRow(run_id=run_id, boot="firmware", accel="kvm", count=2, interval_ms=5.0,
                      memory_mb=16, repeat=0, instance=i, planned_launch_s=i * 0.005)
    for k, v in kw.items():
        setattr(row, k, v)
    return row


def test_rows_are_readable_before_compaction_and_after(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, _manifest("r1"))
    w.append(_row("r1", 0, launch_s=0.0, ready_s=0.04, status="ready", cpu_s=0.03))
    # Not closed, not compacted: a crashed harness leaves exactly this.
    live = load_instances(tmp_path)
    assert list(live.instance) == [0]
    assert live.ready_s.iloc[0] == pytest.approx(0.04)
    w.append(_row("r1", 1, launch_s=0.005, status="crashed", exit_code=1))
    w.close()
    compact(tmp_path)
    (tmp_path / RUNS / "r1.jsonl").unlink()  # a shipped dataset keeps only the Parquet
    table = load_instances(tmp_path)
    assert list(table.status) == ["ready", "crashed"]
    assert math.isnan(table.ready_s.iloc[1])
    assert load_manifests(tmp_path)[0].run_id == "r1"


def test_a_torn_last_line_loses_only_that_line(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, _manifest("r2"))
    w.append(_row("r2", 0, status="ready", ready_s=0.1))
    w.close()
    with open(tmp_path / RUNS / "r2.jsonl", "a") as f:
        f.write('{"run_id": "r2", "instance": 1, "sta')
    assert list(load_instances(tmp_path).instance) == [0]


def test_a_later_partial_row_adds_end_of_burst_cpu_without_losing_the_outcome(
        tmp_path: Path) -> None:
    w = RunWriter(tmp_path, _manifest("r3"))
    w.append(_row("r3", 0, status="ready", ready_s=0.1, cpu_s=0.03))
    w.append(_row("r3", 0, status="ready", ready_s=0.1, cpu_s=0.03, cpu_end_s=0.031, end_s=0.5))
    w.close()
    t = load_instances(tmp_path)
    assert len(t) == 1
    assert t.cpu_end_s.iloc[0] == pytest.approx(0.031)
    assert t.status.iloc[0] == "ready"


def test_missing_or_empty_datasets_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_instances(tmp_path / "nope")
    with pytest.raises(UserError, match="no measurements"):
        load_instances(tmp_path)
