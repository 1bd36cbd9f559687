"""Flat result records of a simulation (one row per request, instance, node sample, node),
the sinks the engine streams rows into, and Parquet/CSV writers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

Row = tuple[Any, ...]
"""A record's fields after (policy, replication), in declaration order: what the engine emits."""


@dataclass(slots=True)
class InstanceRecord:
    """One launched instance that became ready."""

    kind: ClassVar[str] = "instances"
    policy: str
    replication: int
    request_id: int
    instance_id: int
    """Index of the instance within its request (0..count-1)."""
    node: int
    planned_s: float
    """When the policy had it launched (its plan; a past time asked for starts at once)."""
    launch_s: float
    """When it was launched: planned_s, or later when the policy asked for a past time, or when
    its launch ended under a queueing launcher (NodeModel.launches_queue: fair or reserved),
    which falls behind as the node fills (before spawn_s serialisation and the delay)."""
    ready_s: float
    latency_s: float
    """ready_s - the request's arrival_s."""


@dataclass(slots=True)
class RequestRecord:
    """One request: when its first and its last instance became ready."""

    kind: ClassVar[str] = "requests"
    policy: str
    replication: int
    request_id: int
    tenant: str
    count: int
    arrival_s: float
    first_ready_s: float
    p10_ready_s: float
    """When 10 % of the instances were ready: the linear quantile at 0.1 of the request's ready
    times (sim.model.burst_stats); NaN when the run ended before it."""
    all_ready_s: float
    """NaN when the run ended before every instance was ready."""
    time_to_first_s: float
    time_to_all_s: float
    nodes_used: int
    mean_instance_latency_s: float
    """Mean over the instances that became ready."""
    ready_count: int
    complete: bool
    """Every instance became ready before the run ended."""


@dataclass(slots=True)
class NodeSample:
    """State of one node at a sampling instant."""

    kind: ClassVar[str] = "node_samples"
    policy: str
    replication: int
    node: int
    t_s: float
    in_flight: int
    """Launched (started) and not yet ready."""
    ready: int
    """Ready and still running."""
    planned: int
    """Launches scheduled for later, or waiting for a fair launcher, not started."""
    cpu_busy: float
    """Fraction of the node's cores busy over the sampling period that ends at t_s."""


@dataclass(slots=True)
class NodeSummary:
    """One node over the whole run."""

    kind: ClassVar[str] = "nodes"
    policy: str
    replication: int
    node: int
    launches: int
    """Launches that started (not those still planned when the run stopped)."""
    peak_in_flight: int
    cpu_busy_s: float
    """Core-seconds busy (CPU phases plus ready instances' idle load)."""
    cpu_busy: float
    """cpu_busy_s / (cores * run length)."""


Record = InstanceRecord | RequestRecord | NodeSample | NodeSummary
RecordClass = type[InstanceRecord] | type[RequestRecord] | type[NodeSample] | type[NodeSummary]
RECORD_CLASSES: tuple[RecordClass, ...] = (InstanceRecord, RequestRecord, NodeSample, NodeSummary)

_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def schema(cls: RecordClass) -> pa.Schema:
    """Arrow schema of a record class (column per field, in order)."""
    return pa.schema(
        [(f.name, _ARROW_TYPES[str(f.type)]) for f in dataclasses.fields(cls)]
    )


def _constant_string(value: str, n: int) -> pa.Array:
    # pa.array([value] * n) converts n Python strings (~0.6 us each); the buffers cost nothing.
    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))


_NUMPY_TYPES = {pa.int64(): np.int64, pa.float64(): np.float64}


def _column(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of one engine column, built from its buffers: pa.array() of a Python list
    imports pandas on its first call (0.2 s of CPU in a process that has not imported it)."""
    n = len(values)
    if arrow_type == pa.string():
        encoded = [v.encode() for v in values]
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets),
                                           pa.py_buffer(b"".join(encoded)))
    if arrow_type == pa.bool_():
        bits = np.packbits(np.array(values, dtype=np.bool_), bitorder="little")
        return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(bits)])
    data = np.array(values, dtype=_NUMPY_TYPES[arrow_type])
    return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(data)])


def columns_table(
    cls: RecordClass, policy: str, replication: int, columns: Sequence[Sequence[Any]]
) -> pa.Table:
    """Table of engine columns (the fields after policy and replication), adding the constant
    policy and replication columns."""
    sch = schema(cls)
    if len(columns) != len(sch) - 2:
        raise ValueError(f"{cls.kind}: {len(columns)} columns for {len(sch) - 2} fields")
    n = len(columns[0]) if columns else 0
    replications = np.full(n, replication, dtype=np.int64)
    arrays = [_constant_string(policy, n),
              pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(replications)])]
    arrays += [_column(col, sch.field(i + 2).type) for i, col in enumerate(columns)]
    return pa.Table.from_arrays(arrays, schema=sch)


def rows_table(cls: RecordClass, policy: str, replication: int, rows: Sequence[Row]) -> pa.Table:
    """Table of engine rows, adding the constant policy and replication columns."""
    width = len(schema(cls)) - 2
    # One column at a time (zip(*rows) with ~65k arguments is several times slower).
    return columns_table(cls, policy, replication,
                         [list(map(itemgetter(i), rows)) for i in range(width)])


def records_table(cls: RecordClass, records: Sequence[Record]) -> pa.Table:
    """Table of records of one class (an empty list gives an empty table with the schema)."""
    names = [f.name for f in dataclasses.fields(cls)]
    sch = schema(cls)
    arrays = [pa.array([getattr(r, n) for r in records], sch.field(n).type) for n in names]
    return pa.Table.from_arrays(arrays, schema=sch)


def write_parquet(cls: RecordClass, records: Sequence[Record], path: str | Path) -> Path:
    """Write records of one class to a Parquet file; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(records_table(cls, records), out)
    return out


def write_csv(cls: RecordClass, records: Sequence[Record], path: str | Path) -> Path:
    """Write records of one class to a CSV file (for small tables); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(records_table(cls, records), out)
    return out


class RowBuffer(Protocol):
    """Where the engine appends rows of one record class."""

    def append(self, row: Row, /) -> None: ...


class Columns:
    """The rows of one record kind, kept column by column (one list per field after policy and
    replication). The engine appends to the lists themselves on its hot path (a C call each,
    no row tuple), and a chunk turns into Arrow arrays without regrouping values by field."""

    __slots__ = ("columns",)

    def __init__(self, cls: RecordClass) -> None:
        self.columns: tuple[list[Any], ...] = tuple([] for _ in range(len(schema(cls)) - 2))

    def append(self, row: Row, /) -> None:
        """Add one row (the fields in declaration order)."""
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self.columns[0])

    def rows(self) -> list[Row]:
        return list(zip(*self.columns, strict=True))

    def clear(self) -> None:
        # The engine holds these very lists: empty them, never replace them.
        for column in self.columns:
            column.clear()


class RecordSink(Protocol):
    """Receives the rows of one run as they happen."""

    def open(self, policy: str, replication: int) -> dict[str, Columns]:
        """Buffers for the run, keyed by record kind ("instances", "requests", ...)."""
        ...

    def poll(self) -> None:
        """Called now and then during the run: a chance to flush full buffers."""
        ...

    def close(self) -> None:
        """The run is over: flush what is buffered."""
        ...


class MemorySink:
    """Keeps every row in memory; records() turns them into record objects."""

    def __init__(self) -> None:
        self.policy = ""
        self.replication = 0
        self.buffers: dict[str, Columns] = {cls.kind: Columns(cls) for cls in RECORD_CLASSES}

    def open(self, policy: str, replication: int) -> dict[str, Columns]:
        self.policy, self.replication = policy, replication
        return dict(self.buffers)

    def poll(self) -> None:
        return None

    def close(self) -> None:
        return None

    def records(self, cls: RecordClass) -> list[Any]:
        """The rows of one kind as record objects."""
        return [cls(self.policy, self.replication, *row) for row in self.buffers[cls.kind].rows()]

    def table(self, cls: RecordClass) -> pa.Table:
        """The rows of one kind as an Arrow table."""
        return columns_table(cls, self.policy, self.replication, self.buffers[cls.kind].columns)


class ParquetSink:
    """Streams rows to DIR/<kind>.parquet in chunks: memory stays bounded however long the run.

    The engine appends to plain lists (the hot path stays a C call) and polls the sink now and
    then; a buffer past `chunk_rows` is then written as one row group.
    """

    def __init__(self, directory: str | Path, chunk_rows: int = 65_536) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._chunk = chunk_rows
        self._buffers: dict[str, Columns] = {cls.kind: Columns(cls) for cls in RECORD_CLASSES}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._counts = dict.fromkeys(self._buffers, 0)
        self.policy = ""
        self.replication = 0

    def open(self, policy: str, replication: int) -> dict[str, Columns]:
        self.policy, self.replication = policy, replication
        return dict(self._buffers)

    def _flush(self, cls: RecordClass) -> None:
        buffer = self._buffers[cls.kind]
        writer = self._writers.get(cls.kind)
        if writer is None:
            sch = schema(cls)
            # Dictionary encoding only for the strings (policy, tenant): tried on every float
            # column it costs about 0.35 us per row and finds nothing to share.
            strings = [f.name for f in sch if f.type == pa.string()]
            writer = pq.ParquetWriter(self.directory / f"{cls.kind}.parquet", sch,
                                      use_dictionary=strings)
            self._writers[cls.kind] = writer
        if len(buffer):
            writer.write_table(columns_table(cls, self.policy, self.replication, buffer.columns))
            self._counts[cls.kind] += len(buffer)
            buffer.clear()

    def poll(self) -> None:
        for cls in RECORD_CLASSES:
            if len(self._buffers[cls.kind]) >= self._chunk:
                self._flush(cls)

    def close(self) -> None:
        for cls in RECORD_CLASSES:
            self._flush(cls)
            self._writers.pop(cls.kind).close()

    def counts(self) -> dict[str, int]:
        """Rows written per kind."""
        return dict(self._counts)
