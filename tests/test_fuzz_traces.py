"""Trace CSVs as they come from logs and spreadsheets: junk cells, NaN, negative and unsorted
arrivals, huge values, requests of 0 instances, empty files, files cut mid-line. A scenario that
replays one either runs and launches exactly what the trace asks for, or is refused with one line
naming the trace; never a traceback, and `sim run` leaves no --out folder behind when it fails.

Breadth runs in this process through `sim schedule` (one policy, one replication, no report);
`sim run` is checked in subprocesses on the inputs the issue reported and a few more.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    Done,
    assert_no_traceback,
    assert_one_line_naming,
    fuzz_settings,
    run_in_process,
    sim,
)
from hypothesis import example, given
from hypothesis import strategies as st

SCENARIO = """\
name: trace-fuzz
seed: 3
replications: 1
sample_period_s: null
cluster:
  nodes:
    - count: 1
      model: {cores: 2, work_s: 0.01, work_cv: 0.1}
workload:
  kind: trace
  path: trace.csv
policies:
  - name: immediate
"""
"""One node, launch at arrival: node 0's schedule is the trace itself, instance by instance."""


@dataclass(frozen=True)
class Trace:
    text: bytes
    expected: list[tuple[float, int]] | None
    """(arrival_s, count) of each request when the trace is valid; None when it must be refused;
    absent (the attribute `unknown`) when the file holds junk whose meaning is not defined."""
    unknown: bool = False
    why: str = ""


ARRIVALS = st.one_of(
    st.floats(min_value=0, max_value=1e4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-5, max_value=10**15),
    st.sampled_from([0.0, -0.0, -1e-12, 1e15, math.nan, math.inf]),
)
COUNTS = st.one_of(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=-3, max_value=0),
    st.sampled_from([1.0, 2.5, math.nan, math.inf, 2000]),
)
JUNK_CELLS = st.one_of(st.text(max_size=6), st.sampled_from(["", "1e", "NaN", "-", '"', "1,2"]))


def _valid(rows: list[tuple[object, object]], has_count: bool) -> bool:
    times: list[Any] = [a for a, _ in rows]
    if not rows:
        return False  # a trace without requests is a mistake worth a message
    if not all(isinstance(a, int | float) and math.isfinite(a) and a >= 0 for a in times):
        return False
    if any(b < a for a, b in itertools.pairwise(times)):
        return False
    if has_count:
        return all(isinstance(c, int | float) and math.isfinite(c) and c >= 1 and c == int(c)
                   for _, c in rows)
    return True


def _cell(value: object) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    shape = draw(st.sampled_from(["table", "table", "table", "table", "empty", "header_only",
                                  "garbage", "cut", "junk_cells", "no_arrival_column"]))
    if shape == "empty":
        return Trace(b"", None, why="empty file")
    if shape == "header_only":
        return Trace(b"arrival_s,count\n", None, why="no rows")
    if shape == "garbage":
        return Trace(draw(st.binary(min_size=1, max_size=200)), None, unknown=True, why="bytes")
    has_count = draw(st.booleans()) or shape != "table"
    rows: list[tuple[object, object]] = draw(st.lists(st.tuples(ARRIVALS, COUNTS), min_size=1,
                                                      max_size=25))
    if draw(st.booleans()):  # mostly sorted, so that many traces are valid
        rows = sorted(rows, key=lambda r: float(r[0]) if not math.isnan(float(r[0])) else 0.0)  # type: ignore[arg-type]
    total = sum(int(c) for _, c in rows if isinstance(c, int) and c > 0)
    if total > 5000:  # keep one example's simulation under a second
        rows = [(a, min(c, 5) if isinstance(c, int) else c) for a, c in rows]
    header = "arrival_s,count" if has_count else "arrival_s"
    lines = [header] + [f"{_cell(a)},{_cell(c)}" if has_count else _cell(a) for a, c in rows]
    if shape == "no_arrival_column":
        lines[0] = "arrival,count"
        return Trace(("\n".join(lines) + "\n").encode(), None, why="no arrival_s column")
    if shape == "junk_cells":
        row = draw(st.integers(1, len(lines) - 1))
        lines[row] = f"{draw(JUNK_CELLS)},{draw(JUNK_CELLS)}"
        return Trace(("\n".join(lines) + "\n").encode(), None, unknown=True, why="junk cells")
    text = ("\n".join(lines) + "\n").encode()
    if shape == "cut":
        cut = draw(st.integers(0, len(text) - 1))
        return Trace(text[:cut], None, unknown=True, why=f"cut at byte {cut}")
    if not _valid(rows, has_count):
        return Trace(text, None, why="invalid values")
    expected = [(float(a), int(c) if has_count else 1) for a, c in rows]  # type: ignore[arg-type, call-overload]
    return Trace(text, expected)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("traces")
    (folder / "scenario.yaml").write_text(SCENARIO)
    return folder


def check_schedule(done: Done, trace: Trace, trace_path: Path, out: Path) -> None:
    """Accepted: node 0 launched each request's instances at its arrival, nothing more or less.
    Refused: one line naming the trace."""
    assert_no_traceback(done)
    if trace.expected is None and not trace.unknown:
        assert_one_line_naming(done, trace_path)
        return
    if trace.unknown and done.code == 2:
        assert_one_line_naming(done, trace_path)
        return
    assert done.code == 0, f"a valid trace was refused\n{done.describe()}"
    launches = json.loads(out.read_text())["launches"]
    if trace.expected is None:
        return
    first = trace.expected[0][0]
    want = sorted(a - first for a, c in trace.expected for _ in range(c))
    got = sorted(launch["at_s"] for launch in launches)
    assert len(got) == len(want), (len(got), len(want))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@fuzz_settings(80)
@given(trace=traces())
@example(trace=Trace(b"arrival_s,count\n0,3\n1,0\n", None, why="a request of 0 instances"))
@example(trace=Trace(b"arrival_s,count\n5,1\n1,1\n", None, why="arrivals out of order"))
@example(trace=Trace(b"arrival_s,count\nnan,1\n", None, why="NaN arrival"))
@example(trace=Trace(b"arrival_s,count\n0,1\ninf,1\n", None, why="infinite arrival"))
@example(trace=Trace(b"arrival_s,count\n0,abc\n", None, why="non-numeric count"))
@example(trace=Trace(b"arrival_s,count\n0,2.5\n", None, why="fractional count"))
def test_a_trace_is_replayed_exactly_or_refused_in_one_line(trace: Trace, folder: Path) -> None:
    trace_path = folder / "trace.csv"
    trace_path.write_bytes(trace.text)
    out = folder / "schedule.json"
    out.unlink(missing_ok=True)
    done = run_in_process("sim", "schedule", folder / "scenario.yaml", "--policy", "immediate",
                          "--out", out)
    check_schedule(done, trace, trace_path, out)


# --- `sim run` in a subprocess -------------------------------------------------------------

ISSUE_TRACES = {
    "zero_instances": b"arrival_s,count\n0,3\n1,0\n",
    "unsorted": b"arrival_s,count\n5,1\n1,1\n",
    "nan_arrival": b"arrival_s,count\nnan,1\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(ISSUE_TRACES))
def test_sim_run_refuses_a_bad_trace_in_one_line_and_leaves_no_out_folder(
        name: str, folder: Path) -> None:
    trace_path = folder / "trace.csv"
    trace_path.write_bytes(ISSUE_TRACES[name])
    out = folder / f"out-{name}"
    done = sim("run", folder / "scenario.yaml", "--out", out, timeout=120)
    assert_no_traceback(done)
    assert done.code == 2, done.describe()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(trace_path) in lines[0], done.describe()
    assert not out.exists(), "a failed `sim run` left an empty --out folder"


@fuzz_settings(2)
@given(trace=traces().filter(lambda t: t.expected is not None or not t.unknown))
def test_sim_run_on_a_fuzzed_trace_exits_0_with_records_or_2_without_output(
        trace: Trace, folder: Path) -> None:
    trace_path = folder / "trace.csv"
    trace_path.write_bytes(trace.text)
    out = folder / "out-fuzz"
    shutil.rmtree(out, ignore_errors=True)
    done = sim("run", folder / "scenario.yaml", "--out", out, timeout=120)
    assert_no_traceback(done)
    if trace.expected is None:
        assert done.code == 2, done.describe()
        assert not out.exists(), "a failed `sim run` left an --out folder"
        return
    assert done.code == 0, done.describe()
    import pyarrow.parquet as pq

    requests = pq.read_table(out / "records" / "requests.parquet").to_pandas()
    assert sorted(requests["count"]) == sorted(c for _, c in trace.expected)
