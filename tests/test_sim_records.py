"""Result records: the streaming Parquet sink writes exactly the rows the in-memory run keeps,
record lists round-trip through Parquet and CSV, and a request's p10 is numpy's quantile of its
instances' ready times.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sim.engine.cluster import Cluster
from sim.engine.records import (
    InstanceRecord,
    NodeSample,
    NodeSummary,
    ParquetSink,
    Record,
    RecordClass,
    RequestRecord,
    records_table,
    write_csv,
    write_parquet,
)
from sim.engine.simulate import simulate
from sim.model.node_model import NodeModel
from sim.policies.immediate import ImmediatePolicy
from sim.policies.split_bundle import SplitBundleConfig
from sim.workloads.processes import GeometricSize, PoissonWorkload

CLUSTER = Cluster.homogeneous(3, NodeModel(cores=2, work_s=0.2, delay_s=0.05, work_cv=0.3))
WORKLOAD = PoissonWorkload(rate_per_s=10.0, duration_s=60.0, size=GeometricSize(mean=6))


def test_streaming_to_parquet_writes_the_same_rows_as_memory(tmp_path: Path) -> None:
    in_memory = simulate(CLUSTER, WORKLOAD.requests(0, 1), ImmediatePolicy(), seed=1,
                         sample_period_s=0.5)
    sink = ParquetSink(tmp_path, chunk_rows=100)  # small chunks: many writes
    streamed = simulate(CLUSTER, WORKLOAD.requests(0, 1), ImmediatePolicy(), seed=1,
                        sample_period_s=0.5, sink=sink)
    assert streamed.instances == [] and streamed.launches == in_memory.launches
    pairs: list[tuple[RecordClass, Sequence[Record]]] = [
        (InstanceRecord, in_memory.instances), (RequestRecord, in_memory.requests),
        (NodeSample, in_memory.node_samples), (NodeSummary, in_memory.nodes)]
    for cls, records in pairs:
        table = pq.read_table(tmp_path / f"{cls.kind}.parquet")
        assert table.equals(records_table(cls, records)), cls.kind
    assert sink.counts()["instances"] == len(in_memory.instances) > 300


def test_records_round_trip_through_parquet_and_csv(tmp_path: Path) -> None:
    result = simulate(CLUSTER, WORKLOAD.requests(0, 2), ImmediatePolicy(), seed=2)
    parquet = write_parquet(RequestRecord, result.requests, tmp_path / "requests.parquet")
    csv = write_csv(RequestRecord, result.requests, tmp_path / "requests.csv")
    from_parquet = pq.read_table(parquet).to_pylist()
    assert [RequestRecord(**row) for row in from_parquet] == result.requests
    assert pacsv.read_csv(csv).num_rows == len(result.requests)
    empty = records_table(InstanceRecord, [])
    assert empty.num_rows == 0 and "latency_s" in empty.column_names


def test_columns_built_from_buffers_equal_arrow_conversion_of_the_lists() -> None:
    # columns_table() builds Arrow arrays from numpy buffers (pa.array() of a list imports
    # pandas): the same table as pa.array() gives, with non-ASCII tenants, NaN and booleans.
    import math

    import pyarrow as pa

    from sim.engine.records import columns_table, schema

    columns: list[list[object]] = [
        [0, 1, 2], ["a", "läb", ""], [1, 5, 2], [0.5, 1.0, 2.25], [1.0, math.nan, 3.0],
        [1.25, math.nan, 3.5], [2.0, math.nan, 4.0], [0.5, math.nan, 0.75],
        [1.5, math.nan, 1.75], [1, 2, 1],
        [0.1, math.nan, 0.3], [1, 0, 2], [True, True, False],
    ]
    sch = schema(RequestRecord)
    expected = pa.Table.from_arrays(
        [pa.array(["p"] * 3), pa.array([4] * 3, pa.int64())]
        + [pa.array(col, sch.field(i + 2).type) for i, col in enumerate(columns)], schema=sch)
    built = columns_table(RequestRecord, "p", 4, columns)
    assert built.schema == expected.schema
    # (Table.equals() treats NaN as unequal to itself: compare the values' exact reprs.)
    assert repr(built.to_pylist()) == repr(expected.to_pylist())
    assert built.column("all_ready_s").null_count == 0  # NaN stays a float, not a null


def ready_by_request(instances: Sequence[InstanceRecord]) -> dict[int, list[float]]:
    ready: dict[int, list[float]] = defaultdict(list)
    for instance in instances:
        ready[instance.request_id].append(instance.ready_s)
    return ready


def test_p10_ready_is_numpys_quantile_of_the_requests_ready_times() -> None:
    # Split requests finish on several nodes: their ready times reach the request interleaved.
    split = SplitBundleConfig(split_above=4).build(np.random.default_rng(0))
    for policy in (ImmediatePolicy(), split):
        result = simulate(CLUSTER, WORKLOAD.requests(0, 3), policy, seed=3)
        ready = ready_by_request(result.instances)
        assert any(r.nodes_used > 1 for r in result.requests) == (policy is split)
        for r in result.requests:
            assert r.p10_ready_s == float(np.quantile(ready[r.request_id], 0.1)), r
            assert r.first_ready_s <= r.p10_ready_s <= r.all_ready_s


def test_a_cut_run_gives_p10_only_where_the_unready_instances_cannot_move_it() -> None:
    # Instances never ready lie above every ready time; p10 is defined when the quantile is
    # the same whatever they are (two paddings agree), and then it is that quantile.
    result = simulate(CLUSTER, WORKLOAD.requests(0, 4), ImmediatePolicy(), seed=4, until_s=20.0)
    ready = ready_by_request(result.instances)
    cut = [r for r in result.requests if not r.complete]
    assert len(cut) >= 3
    defined = 0
    for r in cut:
        mine = ready[r.request_id]
        missing = r.count - len(mine)
        low, high = (float(np.quantile(mine + [pad] * missing, 0.1)) for pad in (1e6, 2e6))
        if low == high:
            defined += 1
            assert r.p10_ready_s == low, r
        else:
            assert math.isnan(r.p10_ready_s), r
    assert 0 < defined < len(cut)
