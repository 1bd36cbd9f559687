"""The intervention on the kernel's workers (benchmarks/kworker_priority.py) raises exactly the
workqueue workers of the normal pools, never a rescuer or a high-priority worker."""

import os
from pathlib import Path

import pytest

from benchmarks.kworker_priority import is_worker, workers


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
