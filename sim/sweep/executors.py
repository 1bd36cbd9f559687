"""Where a sweep's tasks run, all behind the concurrent.futures Executor interface: in this
process (serial), on a local process pool (local), or on a Dask distributed cluster (dask).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from sim.errors import UserError

ExecutorKind = Literal["serial", "local", "dask"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("serial", "local", "dask")
WORKER_WAIT_S = 60.0
"""How long to wait for a Dask scheduler's first worker before giving up."""
CONNECT_S = 10.0
"""How long to keep trying to reach a Dask scheduler."""

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor to open: `workers` processes (local pool or a Dask cluster started here;
    default: one per CPU), or the Dask scheduler at `scheduler` with whatever workers it has."""

    kind: ExecutorKind = "local"
    workers: int | None = None
    scheduler: str | None = None
    connect_s: float = CONNECT_S
    """How long to keep trying to reach the scheduler."""

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise UserError(f"unknown executor {self.kind!r}; use one of "
                            f"{', '.join(EXECUTOR_KINDS)}")
        if self.kind != "dask" and self.scheduler is not None:
            raise UserError(f"--scheduler needs --executor dask (got --executor {self.kind}); "
                            "drop --scheduler or pass --executor dask")


@dataclass(frozen=True)
class OpenExecutor:
    executor: Executor
    parallelism: int
    """Tasks that can run at once (pool processes, or Dask worker threads)."""
    description: str
    """What ran the tasks, for provenance: e.g. `local (2 processes)`."""
    window: int
    """Tasks to keep submitted at once: enough to keep every slot busy while finished ones
    are saved; 1 inline, where submitting a task runs it."""


class InlineExecutor(Executor):
    """Runs each task in the calling process as it is submitted: the serial reference that
    every other executor must match, through the same code path."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller through the future, as a pool would
            future.set_exception(exc)
        return future


@contextmanager
def open_executor(spec: ExecutorSpec) -> Iterator[OpenExecutor]:
    """The executor `spec` asks for, shut down (pending tasks cancelled) on leaving."""
    if spec.kind == "serial":
        with InlineExecutor() as inline:
            yield OpenExecutor(inline, 1, "serial", window=1)
    elif spec.kind == "local":
        workers = spec.workers or os.cpu_count() or 1
        # forkserver: safe beside the progress bar's thread (fork is not), and the server
        # imports the simulator once, so each worker starts in milliseconds.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["sim.sweep.runner"])
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            yield OpenExecutor(pool, workers, f"local ({workers} processes)", window=2 * workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with _dask(spec) as opened:
            yield opened


@contextmanager
def _dask(spec: ExecutorSpec) -> Iterator[OpenExecutor]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--executor dask needs Dask distributed; install it with "
                        "pip install 'bootstorm[dask]'") from None
    cluster: Any = None
    if spec.scheduler is None:
        workers = spec.workers or os.cpu_count() or 1
        # One thread per worker process: the simulator is pure Python and holds the GIL.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        address = cluster.scheduler_address
    else:
        address = spec.scheduler
    try:
        try:
            client = Client(address, timeout=spec.connect_s)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {address} ({exc}); start it "
                            "with `dask scheduler` or fix --scheduler") from None
        try:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise UserError(f"no Dask worker joined {address} within {WORKER_WAIT_S:.0f} s; "
                                f"start some with `dask worker {address} --nthreads 1`") from None
            threads = sum(client.nthreads().values())
            where = "a local Dask cluster" if cluster is not None else f"Dask at {address}"
            executor = client.get_executor(pure=False)
            # a round trip to the scheduler per result: keep more in flight than locally
            yield OpenExecutor(executor, threads,
                               f"dask ({where}, {len(client.nthreads())} workers, "
                               f"{threads} threads)", window=3 * threads + 2)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
