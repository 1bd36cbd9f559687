"""The tiny scenario the command, sweep and replication tests run (a Poisson stream on two small
nodes, two policies; TINY_SWEEP adds two sweep axes), and how those tests call `sim`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TINY = """\
name: tiny
description: a Poisson stream on two small nodes
seed: 11
replications: 2
sample_period_s: 0.1
cluster:
  nodes:
    - count: 2
      model: {cores: 2, work_s: 0.3, work_cv: 0.2}
workload:
  kind: poisson
  rate_per_s: 3
  duration_s: 4
  size: {kind: uniform, low: 1, high: 6}
policies:
  - name: immediate
  - name: concurrency_cap
    max_in_flight: 2
metrics:
  slo: {time_to_first_s: 0.5}
"""
TINY_SWEEP = TINY + """\
sweep:
  workload.rate_per_s: [1, 2.5, 4]
  policies.concurrency_cap.max_in_flight: [1, 4]
"""


def sim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `sim` command as a user runs it, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=240, check=False)


def at(text: str, needle: str) -> str:
    """line:col (1-based) where `needle` starts in `text`."""
    start = text.index(needle)
    return f"{text.count(chr(10), 0, start) + 1}:{start - text.rfind(chr(10), 0, start)}"
