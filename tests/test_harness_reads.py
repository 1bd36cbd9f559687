"""The harness reads output between launches. A launcher that falls behind its plan (here every
launch is due at once) must still stamp each ready string when it arrives: before the fix of
2026-12-01 it launched every overdue instance first and read nothing until the last launch, and
under a fair-share launcher stamped ready strings up to 1.2 s late (docs/findings.md).

A stand-in QEMU on PATH writes the ready string at once and then idles, so that the test
isolates the harness's loop from boot times; the real boots are in test_burst_boots.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from measure.harness.burst import BurstSpec, run_burst

FAKE_QEMU = """#!/bin/sh
for a in "$@"; do
  [ "$a" = "--version" ] && echo "QEMU emulator version 7.2.0 (stand-in)" && exit 0
done
printf 'BOOTSTORM-READY\\r\\n'
exec sleep 30
"""


def test_ready_strings_are_read_while_overdue_launches_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "qemu-system-x86_64"
    fake.write_text(FAKE_QEMU)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    count = 150
    spec = BurstSpec(boot="firmware", accel="kvm", memory_mb=16, planned_s=(0.0,) * count,
                     interval_ms=0.0, timeout_s=20.0)
    # The fair launcher: under the realtime one the stand-ins' own start-up waits behind the
    # FIFO launches and their children, which says nothing about the harness's reads.
    result = run_burst(spec, tmp_path / "ds", launcher="fair")
    assert [r.status for r in result.rows] == ["ready"] * count
    launches = sorted(r.launch_s for r in result.rows)
    first_ready = min(r.ready_s for r in result.rows)
    # The first ready string was read while launches were still due, not after all of them.
    assert first_ready < launches[-1], (first_ready, launches[-1])
    # Each instance's string is read before most of the later launches have gone by (the old
    # loop: every one of them); what remains is the stand-in's start-up, one launch per pass.
    later = [sum(r.launch_s < t < r.ready_s for t in launches) for r in result.rows]
    assert sorted(later)[count // 2] <= count // 4, later
