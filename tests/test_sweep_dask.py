"""A sweep on a real Dask distributed cluster (a scheduler and two worker processes on
loopback) gives exactly the serial table, through the library and through `sim sweep
--scheduler`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tiny_scenario import TINY_SWEEP

from sim.errors import UserError
from sim.scenario import load_scenario
from sim.sweep.executors import ExecutorSpec, open_executor
from sim.sweep.plan import plan_sweep
from sim.sweep.runner import run_sweep

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A scheduler and two single-threaded worker processes on 127.0.0.1."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_workers_give_exactly_the_serial_table(tmp_path: Path, scheduler: str) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SWEEP)
    plan = plan_sweep(load_scenario(path))
    serial = run_sweep(plan, tmp_path / "serial", ExecutorSpec("serial"))
    on_dask = run_sweep(plan, tmp_path / "dask", ExecutorSpec("dask", scheduler=scheduler),
                        batch=2)
    assert on_dask.executor == f"dask (Dask at {scheduler}, 2 workers, 2 threads)"
    assert on_dask.units_run == serial.units_run and on_dask.tasks == 9
    pd.testing.assert_frame_equal(on_dask.table, serial.table, check_exact=True)


def test_sim_sweep_scheduler_runs_there_and_matches_serial(tmp_path: Path,
                                                           scheduler: str) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SWEEP)
    tables = {}
    for name, extra in (("serial", ["--executor", "serial"]), ("dask", ["--scheduler",
                                                                        scheduler])):
        done = subprocess.run(
            [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(tmp_path / name),
             "--json", *extra], capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        tables[name] = pd.read_parquet(summary["files"]["table"])
        if name == "dask":
            assert summary["executor"].startswith(f"dask (Dask at {scheduler}")
    pd.testing.assert_frame_equal(tables["dask"], tables["serial"], check_exact=True)


def test_an_unreachable_scheduler_is_a_users_mistake_naming_the_address() -> None:
    spec = ExecutorSpec("dask", scheduler="tcp://127.0.0.1:9", connect_s=1.0)
    with pytest.raises(UserError) as caught, open_executor(spec):
        pass
    assert str(caught.value).startswith("cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert "\n" not in str(caught.value)
