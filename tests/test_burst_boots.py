"""Real bursts of the tiny guest under QEMU (KVM on this machine kind, TCG where KVM is absent).

Small counts only: long measurements belong to `measure sweep` and the benchmarks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from measure.harness.burst import BurstSpec, fixed_interval, run_burst
from measure.harness.dataset import load_instances, load_manifests
from measure.harness.memory import reported_kib
from measure.harness.records import launcher_mode

pytestmark = [pytest.mark.boots, pytest.mark.usefixtures("qemu_installed")]

MEASURE = [sys.executable, "-m", "measure.cli"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_small_firmware_burst_boots_every_instance_in_order_of_events(
        tmp_path: Path, accel: str) -> None:
    spec = BurstSpec(boot="firmware", accel=accel, memory_mb=16,  # type: ignore[arg-type]
                     planned_s=fixed_interval(8, 5.0), interval_ms=5.0, timeout_s=60)
    result = run_burst(spec, tmp_path)
    rows = load_instances(tmp_path)
    assert len(rows) == 8
    assert set(rows.status) == {"ready"}
    # Causality for every instance: planned <= launched <= marker <= ready <= end of burst.
    assert (rows.launch_s >= rows.planned_launch_s).all()
    assert (rows.marker_s >= rows.launch_s).all()
    assert (rows.ready_s >= rows.marker_s).all()
    assert (rows.end_s >= rows.ready_s).all()
    # The guest ran: its QEMU used CPU, and a halted guest adds almost none afterwards.
    assert (rows.cpu_s > 0).all()
    assert (rows.cpu_end_s >= rows.cpu_s).all()
    manifest = load_manifests(tmp_path)[0]
    assert manifest.outcome == "complete"
    assert manifest.status_counts == {"ready": 8}
    assert manifest.first_ready_s == pytest.approx(rows.ready_s.min())
    assert "-nodefaults" in manifest.qemu_argv
    assert not any(_alive(r.pid) for r in result.rows)


def test_the_bios_path_boots_through_seabios(tmp_path: Path, accel: str) -> None:
    spec = BurstSpec(boot="bios", accel=accel, memory_mb=16,  # type: ignore[arg-type]
                     planned_s=(0.0,), interval_ms=0.0, timeout_s=60)
    result = run_burst(spec, tmp_path)
    (row,) = result.rows
    assert row.status == "ready"
    assert row.marker_s <= row.ready_s
    # SeaBIOS runs before the boot sector: far slower than the firmware path's few ms of guest.
    assert row.ready_s - row.launch_s > 0.1


def test_an_instance_whose_qemu_dies_is_crashed_not_ready(tmp_path: Path, accel: str) -> None:
    # QEMU refuses a guest larger than it can address and exits with status 1 at once.
    spec = BurstSpec(boot="firmware", accel=accel, memory_mb=1 << 30,  # type: ignore[arg-type]
                     planned_s=(0.0, 0.001), interval_ms=1.0, timeout_s=30)
    result = run_burst(spec, tmp_path)
    assert [r.status for r in result.rows] == ["crashed", "crashed"]
    assert all(r.exit_code == 1 for r in result.rows)
    assert list(load_instances(tmp_path).exit_code) == [1, 1]  # stored, not only in memory
    assert all(r.ready_s != r.ready_s for r in result.rows)  # NaN: never ready
    assert "memory" in result.rows[0].stderr_tail.lower()


def test_instances_not_ready_by_the_deadline_time_out_and_are_killed(
        tmp_path: Path, accel: str) -> None:
    spec = BurstSpec(boot="bios", accel=accel, memory_mb=16,  # type: ignore[arg-type]
                     planned_s=(0.0, 0.0), interval_ms=0.0, timeout_s=0.05)
    result = run_burst(spec, tmp_path)
    assert [r.status for r in result.rows] == ["timeout", "timeout"]
    assert not any(_alive(r.pid) for r in result.rows)


def test_instances_run_on_the_normal_policy_while_the_harness_is_realtime(
        tmp_path: Path, accel: str) -> None:
    policies: list[int] = []

    def on_event(kind: str, row: object) -> None:
        if kind == "ready":
            policies.append(os.sched_getscheduler(row.pid))  # type: ignore[attr-defined]

    spec = BurstSpec(boot="firmware", accel=accel, memory_mb=16,  # type: ignore[arg-type]
                     planned_s=(0.0, 0.0), interval_ms=0.0, timeout_s=30)
    run_burst(spec, tmp_path, on_event=on_event, launcher="realtime")
    assert policies == [os.SCHED_OTHER, os.SCHED_OTHER]
    assert "SCHED_FIFO" in load_manifests(tmp_path)[0].harness_sched
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the harness restored its own policy
    # What the host took back of the free memory is counted (a cumulative count) where this
    # kernel counts it, and left out elsewhere.
    manifest = load_manifests(tmp_path)[0]
    count_now = reported_kib()
    if count_now is None:
        assert manifest.reported_kib_start is None and manifest.reported_kib_end is None
    else:
        assert manifest.reported_kib_start is not None and manifest.reported_kib_end is not None
        assert manifest.reported_kib_start <= manifest.reported_kib_end <= count_now


def test_a_reserved_launcher_keeps_a_cpu_the_instances_do_not_use(
        tmp_path: Path, accel: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("a reserved launcher needs 2 or more CPUs")
    seen: list[tuple[set[int], set[int], int]] = []

    def on_event(kind: str, row: object) -> None:
        if kind == "ready":
            pid = row.pid  # type: ignore[attr-defined]
            seen.append((os.sched_getaffinity(0), os.sched_getaffinity(pid),
                         os.sched_getscheduler(pid)))

    spec = BurstSpec(boot="firmware", accel=accel, memory_mb=16,  # type: ignore[arg-type]
                     planned_s=(0.0, 0.0), interval_ms=0.0, timeout_s=30)
    run_burst(spec, tmp_path, on_event=on_event, launcher="reserved")
    assert seen == [({cpus[0]}, set(cpus[1:]), os.SCHED_OTHER)] * 2
    manifest = load_manifests(tmp_path)[0]
    assert launcher_mode(manifest.harness_sched) == "reserved"
    assert "taskset" in " ".join(manifest.qemu_argv)
    assert sorted(os.sched_getaffinity(0)) == cpus  # the harness may use every CPU again


def _deliverable_sigint() -> None:
    # A suite started as a background job (`make test &`, nohup) ignores SIGINT, and an ignored
    # signal stays ignored across exec: the harness would never see the Ctrl-C this test sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_burst(out: Path, accel: str, count: int = 40,
                 boot: str = "bios") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MEASURE, "burst", "--count", str(count), "--interval-ms", "2", "--boot", boot,
         "--accel", accel, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_deliverable_sigint)


def _wait_for_instances(harness: int, n: int = 5, timeout: float = 60) -> list[int]:
    """PIDs of the first `n` instances the harness has launched (its child processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = subprocess.run(["pgrep", "-P", str(harness)], capture_output=True,
                                  text=True).stdout.split()
        if len(children) >= n:
            return [int(p) for p in children]
        time.sleep(0.05)
    raise AssertionError("the burst never launched instances")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_harness_stops_every_instance_and_keeps_its_rows(
        tmp_path: Path, accel: str, sig: signal.Signals) -> None:
    out = tmp_path / "ds"
    proc = _start_burst(out, accel)
    pids = _wait_for_instances(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "Traceback" not in err
    assert not any(_alive(p) for p in pids)
    manifest = load_manifests(out)[0]
    assert manifest.outcome == "interrupted"
    rows = load_instances(out)
    assert len(rows) == 40  # launched or not, every planned instance is a row
    assert set(rows.status) <= {"interrupted", "ready"}


def test_a_killed_harness_leaves_no_orphans(tmp_path: Path, accel: str) -> None:
    out = tmp_path / "ds"
    proc = _start_burst(out, accel)
    pids = _wait_for_instances(proc.pid)
    proc.kill()  # SIGKILL: no handler runs; the kernel's parent-death signal must do it
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


@pytest.mark.parametrize("args, message", [
    (["--count", "0", "--interval-ms", "1"], "--count must be at least 1"),
    (["--count", "5", "--interval-ms", "-1"], "--interval-ms must be 0 or more"),
    (["--count", "5", "--interval-ms", "1", "--boot", "uefi"], "unknown boot path"),
    (["--count", "5", "--interval-ms", "1", "--accel", "hvf"], "unknown accelerator"),
    (["--count", "five", "--interval-ms", "1"], "Invalid value for '--count'"),
    (["--count", "100000", "--interval-ms", "1"], "largest safe burst"),
])
def test_bad_input_is_one_line_exit_2_and_launches_nothing(
        tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "ds"
    done = subprocess.run([*MEASURE, "burst", *args, "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert not (out / "runs").exists()


def test_an_unwritable_out_directory_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run([*MEASURE, "burst", "--count", "1", "--interval-ms", "1", "--out",
                           str(blocker / "sub")], capture_output=True, text=True)
    assert done.returncode == 2 and "cannot write to --out" in done.stderr


def test_json_output_is_only_json(tmp_path: Path, accel: str) -> None:
    done = subprocess.run([*MEASURE, "burst", "--count", "3", "--interval-ms", "5", "--accel",
                           accel, "--out", str(tmp_path), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)
    assert summary["ready"] == 3 and summary["all_ready_s"] >= summary["first_ready_s"]
