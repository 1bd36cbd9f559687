"""The intervention on the kernel's workers (benchmarks/kworker_priority.py) raises exactly the
workqueue workers of the normal pools, never a rescuer or a high-priority worker; it and the
probe-pace pairs (benchmarks/probe_settle.py) refuse bad arguments before launching anything."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.kworker_priority import is_worker, workers

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("comm", "expected"), [
    ("kworker/0:2-events", True),
    ("kworker/1:0", True),
    ("kworker/u8:35-iou_exit", True),
    ("kworker/u9:0", True),
    ("kworker/0:1H-kblockd", False),
    ("kworker/1:0H-events_highpri", False),
    ("kworker/R-rcu_gp", False),
    ("rcu_preempt", False),
    ("qemu-system-x86_64", False),
    ("kworker", False),
])
def test_which_threads_are_workers(comm: str, expected: bool) -> None:
    assert is_worker(comm) is expected


def test_workers_are_kernel_threads_named_so() -> None:
    # Read against /proc independently: every pid found has a worker's name and no command line
    # (kernel threads have none); this process is never one.
    found = workers()
    assert os.getpid() not in found
    for pid in found:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone since
        assert comm.startswith("kworker/") and cmdline == b""


@pytest.mark.parametrize("argv", [
    ["benchmarks.kworker_priority", "--count", "0"],
    ["benchmarks.kworker_priority", "--repeat", "0"],
    ["benchmarks.kworker_priority", "--interval-ms", "-1"],
    ["benchmarks.probe_settle", "--pairs", "1"],
])
def test_the_interventions_refuse_bad_arguments_before_launching(argv: list[str]) -> None:
    # Nothing may be launched: the error comes from the arguments alone, in one line, exit 2.
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(
        ("must be at least 1 and --interval-ms not negative", "--pairs must be at least 2"))
