"""Faults injected into real bursts (tiny guests, small counts): a QEMU killed mid-burst, QEMUs
that never write, a dataset filesystem that fills during a burst, SIGTERM and SIGKILL during a
resumed `measure sweep`. After each: no QEMU process is left, every launched instance is a row,
and the dataset reads back and says what happened.

Everything goes through the `measure` command and the files it writes (docs/data-format.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fuzz_support import MEASURE, Done, assert_no_traceback, assert_one_line_naming, measure
from test_burst_boots import _alive

pytestmark = [pytest.mark.boots, pytest.mark.usefixtures("qemu_installed")]


def _wait_for(what: str, ready: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in found.split()}


def _manifests(out: Path) -> dict[str, dict[str, Any]]:
    """run_id -> manifest; a manifest caught mid-rewrite is skipped."""
    found = {}
    for path in sorted((out / "runs").glob("*.manifest.json")) if (out / "runs").is_dir() else []:
        try:
            found[path.name.removesuffix(".manifest.json")] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def _rows(out: Path) -> pd.DataFrame:
    """Every instance row of a dataset as a reader of the format sees it: the compacted
    Parquet, and the JSON lines of runs that were never compacted (torn last line dropped)."""
    frames = []
    parquet = out / "instances.parquet"
    compacted: set[str] = set()
    if parquet.exists():
        table = pd.read_parquet(parquet)
        compacted = set(table.run_id)
        frames.append(table)
    for path in sorted((out / "runs").glob("*.jsonl")):
        if path.name.removesuffix(".jsonl") in compacted:
            continue
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
        if rows:
            frames.append(pd.DataFrame(rows).groupby(["run_id", "instance"], as_index=False)
                          .last())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class Harness:
    """A `measure` command started in the background, with every child process it was seen
    to have (the QEMU instances), so that the test can check none outlives it."""

    def __init__(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        self.argv = [*MEASURE, *map(str, args)]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.seen: set[int] = set()

    def children(self) -> set[int]:
        now = _children(self.proc.pid)
        self.seen |= now
        return now

    def wait_for_instances(self, out: Path, known_runs: set[str], n: int = 1) -> set[int]:
        """Children of a new run in `out` (not the memory guard's probes, which boot elsewhere
        before the first run's manifest is written)."""
        _wait_for("a new run's manifest", lambda: set(_manifests(out)) - known_runs)
        return _wait_for(f"{n} instances", lambda: (c := self.children()) and len(c) >= n and c)

    def finish(self, timeout: float = 120) -> Done:
        out, err = self.proc.communicate(timeout=timeout)
        return Done(self.proc.returncode, out, err, " ".join(self.argv[3:]))

    def assert_no_instance_left(self) -> None:
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in self.seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in self.seen), "a QEMU outlived its harness"


def _reads_back(dataset: Path, tmp: Path) -> None:
    """`measure plot` on what is left: figures, or one line saying why not."""
    done = measure("plot", dataset, "--out", tmp / "plots", timeout=120)
    assert_no_traceback(done)
    if done.code != 0:
        assert_one_line_naming(done, dataset)


def test_a_qemu_killed_mid_burst_is_a_crashed_row_and_the_rest_boot(
        tmp_path: Path, accel: str) -> None:
    out = tmp_path / "ds"
    harness = Harness("burst", "--count", "4", "--interval-ms", "150", "--boot", "bios",
                      "--accel", accel, "--out", out, "--json")
    victim = min(harness.wait_for_instances(out, set()))
    os.kill(victim, signal.SIGKILL)
    done = harness.finish()
    assert done.code == 0, done.describe()
    harness.children()
    harness.assert_no_instance_left()
    rows = _rows(out)
    assert len(rows) == 4, rows
    killed = rows[rows.pid == victim]
    assert list(killed.status) == ["crashed"]
    assert killed.exit_code.iloc[0] == -signal.SIGKILL  # what happened, from the row alone
    assert sorted(rows.status) == ["crashed", "ready", "ready", "ready"]
    (manifest,) = _manifests(out).values()
    assert manifest["outcome"] == "complete"
    assert manifest["status_counts"] == {"crashed": 1, "ready": 3}
    assert manifest["all_ready_s"] is None  # not every instance became ready
    _reads_back(out, tmp_path)


FAKE_QEMU = """#!/bin/sh
# QEMU for the memory guard's two probes and every second instance after them; the others
# never write a byte (a guest wedged before its first instruction).
for a in "$@"; do [ "$a" = "--version" ] && exec {real} "$@"; done
mkdir "{state}/$$"
n=$(ls "{state}" | wc -l)
if [ "$n" -le 2 ] || [ $((n % 2)) -eq 0 ]; then exec {real} "$@"; fi
exec sleep 300
"""


def test_instances_whose_qemu_never_writes_time_out_and_are_killed(
        tmp_path: Path, accel: str) -> None:
    real = shutil.which("qemu-system-x86_64")
    assert real is not None
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    fake = bin_dir / "qemu-system-x86_64"
    fake.write_text(FAKE_QEMU.format(real=real, state=state))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = tmp_path / "ds"
    harness = Harness("burst", "--count", "4", "--interval-ms", "50", "--boot", "firmware",
                      "--accel", accel, "--timeout-s", "1", "--out", out, "--json", env=env)
    harness.wait_for_instances(out, set())
    done = harness.finish()
    harness.children()
    assert done.code == 0, done.describe()
    rows = _rows(out)
    assert len(rows) == 4
    assert sorted(rows.status) == ["ready", "ready", "timeout", "timeout"], rows.status
    silent = rows[rows.status == "timeout"]
    assert silent.marker_s.isna().all()  # never wrote a byte, and the row says so
    assert not any(_alive(int(p)) for p in rows.pid)
    (manifest,) = _manifests(out).values()
    assert manifest["status_counts"] == {"ready": 2, "timeout": 2}
    summary = json.loads(done.stdout)[0]
    assert summary["ready"] == 2 and summary["all_ready_s"] is None
    _reads_back(out, tmp_path)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Any:
    """A 64 KiB tmpfs mounted for the test (needs root), nearly filled so that a burst's
    manifest fits but its rows do not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        filler = mount / "filler"
        with open(filler, "wb") as f:
            try:
                f.write(b"\0" * (64 << 10))
                f.flush()
            except OSError:
                pass
        size = filler.stat().st_size
        filler.write_bytes(b"\0" * max(0, size - (8 << 10)))  # leave two pages free
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_dataset_filesystem_that_fills_during_a_burst(
        small_filesystem: Path, tmp_path: Path, accel: str) -> None:
    out = small_filesystem / "ds"
    harness = Harness("burst", "--count", "12", "--interval-ms", "20", "--boot", "firmware",
                      "--accel", accel, "--out", out)
    done = harness.finish()
    harness.children()
    harness.assert_no_instance_left()
    assert "Traceback (most recent call last)" not in done.stderr, done.describe()
    assert done.code != 0, "a burst whose rows could not be written reported success"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "space" in lines[-1].lower(), done.describe()
    manifests = _manifests(out)
    assert all(m["outcome"] != "complete" for m in manifests.values()), (
        "the dataset says complete although rows were lost")
    _reads_back(out, tmp_path)


def _sweep_args(out: Path, accel: str, counts: str) -> list[str | Path]:
    return ["sweep", "--out", out, "--counts", counts, "--intervals-ms", "5", "--repeat", "1",
            "--boot", "bios", "--accel", accel, "--settle-s", "0"]


def test_sigterm_during_a_resumed_sweep_keeps_every_row_and_a_new_resume_finishes(
        tmp_path: Path, accel: str) -> None:
    out = tmp_path / "ds"
    first = Harness(*_sweep_args(out, accel, "2"))
    assert first.finish().code == 0
    done_before = _manifests(out)
    assert [m["outcome"] for m in done_before.values()] == ["complete"]

    resumed = Harness(*_sweep_args(out, accel, "2,10"))
    resumed.wait_for_instances(out, set(done_before), n=2)
    resumed.proc.send_signal(signal.SIGTERM)
    done = resumed.finish()
    resumed.children()
    assert done.code == 143, done.describe()
    assert "Traceback" not in done.stderr
    resumed.assert_no_instance_left()
    manifests = _manifests(out)
    (cut,) = set(manifests) - set(done_before)
    assert manifests[cut]["outcome"] == "interrupted"
    rows = _rows(out)
    assert (rows.groupby("run_id").size() == rows.groupby("run_id")["count"].first()).all(), (
        "every planned instance of every run is a row, interrupted or not")
    assert set(rows[rows.run_id == cut].status) <= {"interrupted", "ready"}
    assert manifests[cut]["status_counts"] == rows[rows.run_id == cut].status.value_counts(
    ).to_dict()

    again = Harness(*_sweep_args(out, accel, "2,10"))
    done = again.finish()
    assert done.code == 0, done.describe()
    assert "1 bursts run, 1 already done" in done.stderr
    complete = [m for m in _manifests(out).values() if m["outcome"] == "complete"]
    assert sorted(m["count"] for m in complete) == [2, 10]
    _reads_back(out, tmp_path)


def test_a_sigkilled_sweep_leaves_no_qemu_and_a_dataset_that_says_so(
        tmp_path: Path, accel: str) -> None:
    out = tmp_path / "ds"
    harness = Harness(*_sweep_args(out, accel, "10"))
    harness.wait_for_instances(out, set(), n=2)
    harness.proc.kill()  # no handler runs: only the kernel's parent-death signal stops QEMU
    harness.finish(timeout=30)
    harness.assert_no_instance_left()
    (manifest,) = _manifests(out).values()
    assert manifest["outcome"] != "complete"  # the run never said it finished
    _reads_back(out, tmp_path)
    again = Harness(*_sweep_args(out, accel, "10"))
    done = again.finish()
    assert done.code == 0 and "1 bursts run, 0 already done" in done.stderr, done.describe()
