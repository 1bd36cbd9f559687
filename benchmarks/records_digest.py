"""Digests of every record table the simulator writes for the shipped scenarios and the speed
benchmark's workloads, so that a refactoring can be shown to leave records bit for bit identical.

    .venv/bin/python benchmarks/records_digest.py --out after.json
    .venv/bin/python benchmarks/records_digest.py --tree /path/to/old/checkout --out before.json
    diff before.json after.json

Each table is hashed column by column (name, Arrow type and the raw values), so a change in
any value, in column order or in type changes its digest. With --columns each column gets its
own digest (`table:column`): a change that adds a column shows as that column alone. Everything
runs in subprocesses whose PYTHONPATH is the tree under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.parquet as pq
import typer

ROOT = Path(__file__).resolve().parents[1]

# The speed benchmark's two workloads at a tenth of their size (same node, load, policies).
SPEED_RUN = """
import sys
from benchmarks import sim_speed as ss
try:
    from sim.engine.simulate import simulate
    from sim.engine.cluster import Cluster
    from sim.engine.records import ParquetSink
    from sim.policies.immediate import ImmediatePolicy
except ImportError:  # the layout before sim/engine/ and sim/policies/protocol.py
    from sim.engine import simulate
    from sim.cluster import Cluster
    from sim.records import ParquetSink
    from sim.policy import ImmediatePolicy
nodes, launches, policy, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
requests = ss.workload(nodes, launches, ss.NODE).requests(0, 1)
chosen = ImmediatePolicy() if policy == "immediate" else ss.SpacedLaunches(0.005)
sink = ParquetSink(out)
simulate(Cluster.homogeneous(nodes, ss.NODE), requests, chosen, seed=1, sink=sink)
"""


def table_digest(table: pa.Table) -> str:
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(name.encode())
        h.update(str(column.type).encode())
        h.update(repr(column.to_pylist()).encode())
    return h.hexdigest()


def digests(folder: Path, by_column: bool = False) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*.parquet")):
        name, table = str(path.relative_to(folder)), pq.read_table(path)
        if not by_column:
            out[name] = table_digest(table)
            continue
        for column in table.column_names:
            out[f"{name}:{column}"] = table_digest(table.select([column]))
    return out


def run(tree: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def main(
    out: Annotated[Path, typer.Option(help="JSON file of digests")],
    tree: Annotated[Path, typer.Option(help="checkout whose simulator runs")] = ROOT,
    scenarios: Annotated[str, typer.Option(help="comma-separated scenario names (all)")] = "",
    columns: Annotated[bool, typer.Option(help="one digest per column")] = False,
) -> None:
    tree = tree.resolve()
    names = scenarios.split(",") if scenarios else sorted(
        p.stem for p in (tree / "scenarios").glob("*.yaml"))
    result: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp) / name
            path = tree / "scenarios" / f"{name}.yaml"
            command = "sweep" if "\nsweep:" in path.read_text() else "run"
            run(tree, ["-c", "from sim.cli import main; main()", command, str(path),
                       "--out", str(folder)])
            result[f"scenario:{name}"] = digests(folder, columns)
            print(f"{name}: {len(result[f'scenario:{name}'])} tables", file=sys.stderr)
        for policy in ("immediate", "spaced"):
            folder = Path(tmp) / f"speed-{policy}"
            folder.mkdir()
            run(tree, ["-c", SPEED_RUN, "100", "100000", policy, str(folder)])
            result[f"speed:{policy}"] = digests(folder, columns)
            print(f"speed {policy}: {len(result[f'speed:{policy}'])} tables", file=sys.stderr)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    typer.run(main)
