"""One burst: launch N instances on a planned schedule and time each to its ready string.

A single epoll loop watches a timerfd (the next planned launch) and every instance's stdout and
stderr; there is no thread per instance. Rows are appended and flushed as outcomes happen.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from measure import __version__
from measure.harness.clock import DeadlineTimer, now
from measure.harness.dataset import RunWriter, compact
from measure.harness.guest import READY, Accel, BootPath, find_qemu, qemu_argv
from measure.harness.host import host_info, qemu_version
from measure.harness.process import (
    Spawned,
    cpu_and_wait_seconds,
    kill_and_reap,
    normal_policy_prefix,
    pdeathsig_prefix,
    raise_fd_limit,
    spawn,
    try_reap,
)
from measure.harness.records import InstanceRow, Manifest
from sim.errors import UserError
from sim.model.units import seconds

START_LEAD_S = 0.05
"""The burst starts this long after set-up, so that instance 0 is launched on schedule too."""
STDERR_TAIL = 400


class BurstInterrupted(Exception):
    """SIGTERM or SIGHUP arrived during a burst."""


@dataclass(frozen=True, slots=True)
class BurstSpec:
    """What to launch and when."""

    boot: BootPath
    accel: Accel
    memory_mb: int
    planned_s: tuple[float, ...]
    """Planned launch offset of each instance from the burst start, in launch order."""
    interval_ms: float
    repeat: int = 0
    timeout_s: float = 60.0
    """How long after the last planned launch an instance may take before it counts as timeout."""
    schedule: str | None = None

    @property
    def count(self) -> int:
        return len(self.planned_s)


def fixed_interval(count: int, interval_ms: float) -> tuple[float, ...]:
    """The study's schedule: instance i at i * interval."""
    return tuple(seconds(i * interval_ms) for i in range(count))


def default_timeout_s(boot: BootPath, accel: Accel, count: int) -> float:
    """A generous per-burst timeout: slow boot paths under contention take seconds each."""
    per = 4.0 if boot == "bios" else 0.3
    if accel == "tcg":
        per *= 2
    return 30.0 + per * count


@dataclass(slots=True)
class _Live:
    row: InstanceRow
    proc: Spawned
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    open_fds: int = 2
    final: bool = False


@dataclass(frozen=True, slots=True)
class BurstResult:
    run_id: str
    out: Path
    rows: list[InstanceRow]
    manifest: Manifest


REALTIME_PRIORITY = 10


@contextlib.contextmanager
def harness_priority(realtime: bool) -> Iterator[str]:
    """Run the harness under SCHED_FIFO so that launches and reads are not delayed behind the
    very QEMU processes it measures. Yields a description for the manifest.

    posix_spawn (vfork) suspends the harness until the child's first exec; that exec must not
    wait behind dozens of booting instances, so the child keeps SCHED_FIFO for it, and the first
    program it runs is `chrt --other 0`, which drops to the normal policy before QEMU starts."""
    if not realtime:
        yield "SCHED_OTHER (realtime off)"
        return
    try:
        old_policy = os.sched_getscheduler(0)
        old_param = os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (PermissionError, OSError) as err:
        yield f"SCHED_OTHER (SCHED_FIFO refused: {err.strerror})"
        return
    try:
        yield f"SCHED_FIFO priority {REALTIME_PRIORITY}; instances SCHED_OTHER via chrt"
    finally:
        os.sched_setscheduler(0, old_policy, old_param)


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so the cleanup path runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise BurstInterrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP (delivered, and raised as exceptions, on exit)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id(spec: BurstSpec) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return (f"{stamp}-{spec.boot}-{spec.accel}-n{spec.count}-i{spec.interval_ms:g}"
            f"-m{spec.memory_mb}-r{spec.repeat}-{uuid.uuid4().hex[:6]}")


def run_burst(
    spec: BurstSpec,
    out: Path,
    *,
    memory_estimate_mb: float | None = None,
    on_event: Callable[[str, InstanceRow], None] | None = None,
    realtime: bool = True,
) -> BurstResult:
    """Run one burst into dataset directory `out` and return its rows.

    Every instance is killed and reaped before this returns or raises (KeyboardInterrupt or
    BurstInterrupted after recording what was measured).
    """
    with harness_priority(realtime) as sched:
        return _run_burst(spec, out, memory_estimate_mb, on_event, sched)


def _run_burst(
    spec: BurstSpec,
    out: Path,
    memory_estimate_mb: float | None,
    on_event: Callable[[str, InstanceRow], None] | None,
    sched: str,
) -> BurstResult:
    if spec.count < 1:
        raise UserError("count must be at least 1")
    qemu = find_qemu()
    # setpriv runs first, still under the harness's SCHED_FIFO, so the window in which the
    # harness could die before the child has its parent-death signal is a millisecond, not the
    # tens of milliseconds a normal-policy exec waits behind booting instances.
    qemu_cmd = qemu_argv(qemu, spec.boot, spec.accel, spec.memory_mb)
    if sched.startswith("SCHED_FIFO"):
        qemu_cmd = normal_policy_prefix() + qemu_cmd
    argv = pdeathsig_prefix() + qemu_cmd
    raise_fd_limit(2 * spec.count)
    run_id = new_run_id(spec)
    manifest = Manifest(
        run_id=run_id, bootstorm_version=__version__, started_at=_iso_now(), host=host_info(),
        qemu_path=qemu, qemu_version=qemu_version(qemu), qemu_argv=argv, boot=spec.boot,
        accel=spec.accel, count=spec.count, interval_ms=spec.interval_ms,
        memory_mb=spec.memory_mb, repeat=spec.repeat, timeout_s=spec.timeout_s,
        schedule=spec.schedule, memory_estimate_mb=memory_estimate_mb, harness_sched=sched,
    )
    writer = RunWriter(out, manifest)
    rows = [
        InstanceRow(run_id=run_id, boot=spec.boot, accel=spec.accel, count=spec.count,
                    interval_ms=spec.interval_ms, memory_mb=spec.memory_mb, repeat=spec.repeat,
                    instance=i, planned_launch_s=p)
        for i, p in enumerate(spec.planned_s)
    ]
    order = sorted(range(spec.count), key=lambda i: spec.planned_s[i])
    tmpdir = tempfile.mkdtemp(prefix="bootstorm-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": tmpdir, "LC_ALL": "C"}
    live: dict[int, _Live] = {}
    fd_owner: dict[int, _Live] = {}
    epoll = select.epoll()
    timer = DeadlineTimer()
    epoll.register(timer.fd, select.EPOLLIN)
    outcome = "failed"
    status_for_rest = "interrupted"
    t0 = now() + START_LEAD_S

    def emit(kind: str, row: InstanceRow) -> None:
        if on_event is not None:
            on_event(kind, row)

    def finish(inst: _Live, status: str) -> None:
        inst.final = True
        row = inst.row
        row.status = status  # type: ignore[assignment]
        row.stderr_tail = inst.err[-STDERR_TAIL:].decode(errors="replace")
        writer.append(row)
        emit(status, row)

    def close_fd(fd: int) -> None:
        with contextlib.suppress(OSError):
            epoll.unregister(fd)
        os.close(fd)
        fd_owner.pop(fd, None)

    try:
        with _terminate_as_exception():
            last_planned = max(spec.planned_s)
            deadline = t0 + last_planned + spec.timeout_s
            next_k = 0
            timer.arm(t0 + spec.planned_s[order[0]])
            pending_cpu: list[_Live] = []
            unfinished = spec.count
            while unfinished > 0:
                wait = deadline - now()
                if wait <= 0:
                    break
                events = epoll.poll(wait)
                for fd, _mask in events:
                    stamp = now()
                    if fd == timer.fd:
                        timer.consume()
                        while next_k < spec.count and t0 + spec.planned_s[order[next_k]] <= stamp:
                            i = order[next_k]
                            next_k += 1
                            row = rows[i]
                            # A signal between the launch time and `live` would lose the row
                            # (and its process) from the clean-up: it waits until both agree.
                            with _signals_held():
                                row.launch_s = now() - t0
                                try:
                                    proc = spawn(argv, env)
                                except OSError as err:
                                    row.stderr_tail = f"spawn failed: {err.strerror}"
                                    row.status = "spawn_failed"
                                    writer.append(row)
                                    emit("spawn_failed", row)
                                    unfinished -= 1
                                    continue
                                row.pid = proc.pid
                                inst = _Live(row=row, proc=proc)
                                live[i] = inst
                                for pfd in (proc.stdout, proc.stderr):
                                    fd_owner[pfd] = inst
                                    epoll.register(pfd, select.EPOLLIN)
                            emit("launched", row)
                            stamp = now()
                        if next_k < spec.count:
                            timer.arm(t0 + spec.planned_s[order[next_k]])
                        continue
                    inst_or_none = fd_owner.get(fd)
                    if inst_or_none is None:
                        continue
                    inst = inst_or_none
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if fd == inst.proc.stderr:
                        if data:
                            inst.err += data
                            del inst.err[:-4 * STDERR_TAIL]
                        else:
                            close_fd(fd)
                        continue
                    if data:
                        if not inst.out:
                            inst.row.marker_s = stamp - t0
                        inst.out += data
                        if not inst.final and READY in inst.out:
                            inst.row.ready_s = stamp - t0
                            inst.final = True
                            pending_cpu.append(inst)
                            unfinished -= 1
                        del inst.out[:-len(READY)]
                        continue
                    # stdout closed: the process ended.
                    close_fd(fd)
                    if not inst.final:
                        code = try_reap(inst.proc.pid)
                        inst.row.exit_code = code
                        inst.row.cpu_s = float("nan")
                        finish(inst, "crashed")
                        unfinished -= 1
                # CPU time is read after the batch's timestamps are taken, so reading /proc
                # does not delay when a ready string is seen.
                for inst in pending_cpu:
                    inst.row.cpu_s, inst.row.wait_s = cpu_and_wait_seconds(inst.proc.pid)
                    finish(inst, "ready")
                pending_cpu.clear()
            outcome = "complete"
            status_for_rest = "timeout"
    except (KeyboardInterrupt, BurstInterrupted):
        outcome = "interrupted"
        raise
    finally:
        timer.close()
        for inst in live.values():
            # What a ready instance keeps costing while idle: its CPU time at the end.
            inst.row.end_s = now() - t0
            inst.row.cpu_end_s, wait_end = cpu_and_wait_seconds(inst.proc.pid)
            if not inst.final:
                inst.row.cpu_s, inst.row.wait_s = inst.row.cpu_end_s, wait_end
        ended = kill_and_reap([inst.proc.pid for inst in live.values()])
        for inst in live.values():
            code = ended.get(inst.proc.pid)
            # A crashed QEMU closes stdout while exiting; its status is its own even if our
            # SIGKILL arrived during the exit. Instances we killed keep exit_code None.
            if code is not None and inst.row.exit_code is None and (
                    inst.row.status == "crashed" or code != -signal.SIGKILL):
                inst.row.exit_code = code
            if not inst.final:
                finish(inst, status_for_rest)
            else:
                writer.append(inst.row)  # merged with its outcome row by the reader
        for fd in list(fd_owner):
            close_fd(fd)
        epoll.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        unlaunched = [r for r in rows if r.launch_s != r.launch_s and r.status != "spawn_failed"]
        for row in unlaunched:
            row.status = status_for_rest  # type: ignore[assignment]
            writer.append(row)
        writer.close()
        manifest.t0_monotonic = t0
        manifest.ended_at = _iso_now()
        manifest.outcome = outcome  # type: ignore[assignment]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        manifest.status_counts = counts
        ready = [r.ready_s for r in rows if r.status == "ready"]
        manifest.first_ready_s = min(ready) if ready else None
        manifest.all_ready_s = max(ready) if len(ready) == spec.count else None
        writer.write_manifest()
        compact(out)
    return BurstResult(run_id=run_id, out=out, rows=rows, manifest=manifest)
