"""Simulator speed and memory: 1,000 nodes and 1,000,000 launches on one core, against a
straightforward SimPy implementation (one process per instance, interrupts to re-share the CPU).

    .venv/bin/python benchmarks/sim_speed.py            # everything, a few minutes
    .venv/bin/python benchmarks/sim_speed.py --json     # the figures as JSON on stdout

Each size runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own.
Figures go to docs/performance.md.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import simpy
import typer

from sim.engine.cluster import Cluster
from sim.engine.records import ParquetSink
from sim.engine.request import Request
from sim.engine.simulate import simulate
from sim.entry import run_app
from sim.model.node_model import NodeModel
from sim.policies.immediate import ImmediatePolicy
from sim.policies.protocol import PlatformView
from sim.workloads.processes import GeometricSize, PoissonWorkload

LOCK = Path("/tmp/bootstorm-measuring")

# A node shaped like the 2016 host (about 2 s of start-up delay, ~50 launches/s of CPU work on
# 4 cores). Requests of ~50 instances (geometric) keep the cluster at about 40% CPU load.
NODE = NodeModel(cores=4, work_s=0.08, delay_s=2.0, work_cv=0.3)
MEAN_SIZE = 50.0
LOAD = 0.4

app = typer.Typer(no_args_is_help=False, add_completion=False)


def workload(nodes: int, launches: int, model: NodeModel) -> PoissonWorkload:
    """Poisson requests that bring about `launches` instances to `nodes` nodes at LOAD."""
    instance_rate = LOAD * nodes * model.cores / model.work_s
    request_rate = instance_rate / MEAN_SIZE
    return PoissonWorkload(rate_per_s=request_rate, duration_s=launches / instance_rate,
                           size=GeometricSize(mean=MEAN_SIZE))


class SpacedLaunches:
    """Benchmark driver: each request on the least-loaded node, its instances `interval_s`
    apart, so that every launch is a planned event in the node's own heap."""

    name = "spaced"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.load: np.ndarray | None = None
        self.next_free: np.ndarray | None = None
        self.ready_nodes: list[int] = []
        """Nodes of the instances ready since the last request (subtracted from load then)."""

    def on_request(self, view: PlatformView, request: Request) -> None:
        if self.load is None or self.next_free is None:
            self.load = np.zeros(len(view.nodes), dtype=np.int64)
            self.next_free = np.zeros(len(view.nodes))
        if self.ready_nodes:
            self.load -= np.bincount(self.ready_nodes, minlength=self.load.size)
            self.ready_nodes.clear()
        node = int(np.argmin(self.load))
        start = max(view.now, float(self.next_free[node]))
        at = [start + i * self.interval_s for i in range(request.count)]
        self.next_free[node] = at[-1] + self.interval_s
        view.launch(node, request, range(request.count), at)
        self.load[node] += request.count

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self.ready_nodes.append(node)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def run_engine(nodes: int, launches: int, policy: str, delay_s: float, seed: int) -> dict[str, Any]:
    """One engine run, records streamed to Parquet in a temporary directory."""
    model = NODE.model_copy(update={"delay_s": delay_s})
    requests = workload(nodes, launches, model).requests(0, seed)
    chosen = ImmediatePolicy() if policy == "immediate" else SpacedLaunches(0.005)
    with tempfile.TemporaryDirectory() as out:
        sink = ParquetSink(out)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = simulate(Cluster.homogeneous(nodes, model), requests, chosen, seed=seed,
                          sink=sink)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        written = sink.counts()["instances"]
    return {
        "nodes": nodes, "policy": policy, "delay_s": delay_s, "launches": result.launches,
        "instances_written": written, "cpu_s": cpu, "wall_s": wall,
        "launches_per_cpu_s": result.launches / cpu, "node_events": result.node_events,
        "peak_in_flight": result.peak_in_flight, "simulated_s": result.end_s,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- the straightforward SimPy implementation ---------------------------------------------------


class NaiveNode:
    """Processor sharing the textbook SimPy way: every instance is a process sleeping until its
    own finish; whenever a job enters or leaves, every other job is interrupted to re-plan."""

    def __init__(self, env: simpy.Environment, model: NodeModel) -> None:
        self.env = env
        self.model = model
        self.remaining: dict[simpy.Process, float] = {}
        self.last = 0.0

    def rate(self) -> float:
        k = len(self.remaining)
        return min(self.model.max_rate, self.model.cores / k) if k else 0.0

    def catch_up(self) -> None:
        done = (self.env.now - self.last) * self.rate()
        for proc in self.remaining:
            self.remaining[proc] -= done
        self.last = self.env.now

    def reshare(self, me: simpy.Process) -> None:
        for proc in self.remaining:
            if proc is not me:
                proc.interrupt()


def naive_instance(env: simpy.Environment, node: NaiveNode, work: float,
                   ready: list[float], index: int) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(node.model.delay_s)
    me = env.active_process
    assert me is not None
    node.catch_up()
    node.remaining[me] = work
    node.reshare(me)
    while True:
        try:
            yield env.timeout(max(0.0, node.remaining[me]) / node.rate())
            node.catch_up()
            del node.remaining[me]
            node.reshare(me)
            ready[index] = env.now
            return
        except simpy.Interrupt:
            continue


def naive_arrivals(env: simpy.Environment, nodes: list[NaiveNode], requests: Sequence[Request],
                   works: Sequence[np.ndarray], ready: list[float],
                   firsts: list[int]) -> Generator[simpy.Event, Any, None]:
    load = [0] * len(nodes)
    for request, work in zip(requests, works, strict=True):
        yield env.timeout(request.arrival_s - env.now)
        node = min(range(len(nodes)), key=load.__getitem__)  # least loaded, lowest id
        load[node] += request.count  # (never decremented: fine for a comparison of speed)
        for i in range(request.count):
            env.process(naive_instance(env, nodes[node], float(work[i]), ready,
                                       firsts[request.request_id] + i))


def naive_vs_engine(nodes: int, launches: int, seed: int) -> dict[str, Any]:
    """Both implementations on the same small workload with the same work per instance; the
    ready times must agree, and the ratio of their speeds is the point."""
    model = NODE
    spec = workload(nodes, launches, model)
    requests = list(spec.requests(0, seed))
    rng = np.random.default_rng([99, 0, seed])
    scales = [rng.exponential(1.0, r.count) for r in requests]
    # Explicit per-instance work, and placement that ignores readiness, so both see the same.
    requests = [r.model_copy(update={"work_scale": tuple(s.tolist())})
                for r, s in zip(requests, scales, strict=True)]
    firsts = np.concatenate([[0], np.cumsum([r.count for r in requests])]).tolist()
    total = firsts[-1]

    env = simpy.Environment()
    naive_nodes = [NaiveNode(env, model) for _ in range(nodes)]
    naive_ready = [math.nan] * total
    env.process(naive_arrivals(env, naive_nodes, requests,
                               [model.work_s * s for s in scales], naive_ready, firsts))
    cpu0 = time.process_time()
    env.run()
    naive_cpu = time.process_time() - cpu0

    # The engine needs ~0.04 s here, so one cold run mostly times first-call overheads: best of
    # ENGINE_REPEATS runs (the naive model's ~10 s are timed once).
    engine_runs = []
    for _ in range(ENGINE_REPEATS):
        cpu0 = time.process_time()
        result = simulate(Cluster.homogeneous(nodes, model), requests, NeverDecrement(), seed=seed)
        engine_runs.append(time.process_time() - cpu0)
    engine_cpu = min(engine_runs)
    ours = np.full(total, math.nan)
    for rec in result.instances:
        ours[firsts[rec.request_id] + rec.instance_id] = rec.ready_s
    return {
        "nodes": nodes, "launches": total, "naive_cpu_s": naive_cpu, "engine_cpu_s": engine_cpu,
        "engine_cpu_s_runs": engine_runs,
        "naive_launches_per_cpu_s": total / naive_cpu,
        "engine_launches_per_cpu_s": total / engine_cpu,
        "speedup": naive_cpu / engine_cpu,
        "max_ready_difference_s": float(np.nanmax(np.abs(ours - np.array(naive_ready)))),
    }


ENGINE_REPEATS = 5


class NeverDecrement(ImmediatePolicy):
    """Least loaded by launches so far (as the naive driver counts): the same placements."""

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        return None


# --- driver ---------------------------------------------------------------------------------------


def child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its JSON."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def host() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
            "simpy": simpy.__version__, "numpy": np.__version__,
            "load_average_at_start": os.getloadavg()}


@app.command()
def main(
    json_out: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
    child_run: Annotated[str | None, typer.Option("--child", hidden=True)] = None,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 1,
    naive_launches: Annotated[int, typer.Option(help="Size of the naive comparison.")] = 10_000,
) -> None:
    """Measure the simulator's speed and memory (see docs/performance.md)."""
    if child_run is not None:
        kind, *rest = child_run.split(":")
        if kind == "engine":
            nodes, launches, policy, delay = rest
            figures = run_engine(int(nodes), int(launches), policy, float(delay), seed)
        elif kind == "naive":
            nodes, launches = rest
            figures = naive_vs_engine(int(nodes), int(launches), seed)
        elif kind == "imports":
            figures = {"peak_rss_mb": peak_rss_mb()}
        else:
            raise typer.BadParameter(f"unknown child run {kind!r}")
        print(json.dumps(figures))
        return
    while LOCK.exists():
        print("waiting: real VMs are being measured (/tmp/bootstorm-measuring)", file=sys.stderr)
        time.sleep(20)
    report: dict[str, Any] = {"host": host(), "runs": {}}
    plan = {
        "imports only": "imports",
        "1e6 immediate": "engine:1000:1000000:immediate:2.0",
        "1e6 spaced 5 ms": "engine:1000:1000000:spaced:2.0",
        "1e5 immediate": "engine:1000:100000:immediate:2.0",
        "1e6 immediate, delay 20 s (10x in flight)": "engine:1000:1000000:immediate:20.0",
        "naive vs engine": f"naive:10:{naive_launches}",
    }
    for label, spec in plan.items():
        print(f"running {label} ...", file=sys.stderr)
        report["runs"][label] = child(["--child", spec, "--seed", str(seed)])
        print(f"  {json.dumps(report['runs'][label])}", file=sys.stderr)
    if json_out:
        print(json.dumps(report, indent=2))
        return
    for label, figures in report["runs"].items():
        print(f"{label}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in figures.items()))


if __name__ == "__main__":
    run_app(app)
