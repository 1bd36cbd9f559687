"""One burst: launch N instances on a planned schedule and time each to its ready string.

A single epoll loop watches a timerfd (the next planned launch) and every instance's stdout and
stderr; there is no thread per instance. `_Burst` has one method per event the loop reacts to.
Rows are appended and flushed as outcomes happen.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from measure import __version__
from measure.harness.clock import DeadlineTimer, now
from measure.harness.dataset import RunWriter, compact, write_failure
from measure.harness.guest import READY, Accel, BootPath, find_qemu, qemu_argv
from measure.harness.host import host_info, qemu_version
from measure.harness.memory import reported_kib
from measure.harness.process import (
    Spawned,
    cpu_and_wait_seconds,
    cpus_prefix,
    kill_and_reap,
    normal_policy_prefix,
    pdeathsig_prefix,
    raise_fd_limit,
    spawn,
    try_reap,
)
from measure.harness.records import InstanceRow, LauncherMode, Manifest, Status
from measure.harness.signals import (
    BurstInterrupted,
    harness_priority,
    instance_cpus,
    signals_held,
    terminate_as_exception,
)
from sim.errors import UserError
from sim.model.burst_stats import burst_figures
from sim.model.units import seconds

START_LEAD_S = 0.05
"""The burst starts this long after set-up, so that instance 0 is launched on schedule too."""
STDERR_TAIL = 400


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
    final: bool = False


@dataclass(frozen=True, slots=True)
class BurstResult:
    run_id: str
    out: Path
    rows: list[InstanceRow]
    manifest: Manifest


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
    launcher: LauncherMode = "realtime",
) -> BurstResult:
    """Run one burst into dataset directory `out` and return its rows.

    Every instance is killed and reaped before this returns or raises (KeyboardInterrupt or
    BurstInterrupted after recording what was measured).
    """
    if spec.count < 1:
        raise UserError("count must be at least 1")
    with harness_priority(launcher) as sched:
        return _Burst(spec, out, memory_estimate_mb, on_event, sched).run()


class _Burst:
    """One burst in flight: the epoll loop, and one method per event it reacts to (a launch is
    due, an instance wrote output, an instance exited, the deadline passed, a signal arrived)."""

    def __init__(self, spec: BurstSpec, out: Path, memory_estimate_mb: float | None,
                 on_event: Callable[[str, InstanceRow], None] | None, sched: str) -> None:
        self.spec = spec
        self.out = out
        self.on_event = on_event
        qemu = find_qemu()
        # setpriv runs first, still under the harness's SCHED_FIFO, so the window in which the
        # harness could die before the child has its parent-death signal is a millisecond, not
        # the tens of milliseconds a normal-policy exec waits behind booting instances.
        qemu_cmd = qemu_argv(qemu, spec.boot, spec.accel, spec.memory_mb)
        if sched.startswith("SCHED_FIFO"):
            qemu_cmd = normal_policy_prefix() + qemu_cmd
        cpus = instance_cpus(sched)
        if cpus is not None:
            qemu_cmd = cpus_prefix(cpus) + qemu_cmd
        self.argv = pdeathsig_prefix() + qemu_cmd
        raise_fd_limit(2 * spec.count)
        self.run_id = new_run_id(spec)
        self.manifest = Manifest(
            run_id=self.run_id, bootstorm_version=__version__, started_at=_iso_now(),
            host=host_info(), qemu_path=qemu, qemu_version=qemu_version(qemu), qemu_argv=self.argv,
            boot=spec.boot, accel=spec.accel, count=spec.count, interval_ms=spec.interval_ms,
            memory_mb=spec.memory_mb, repeat=spec.repeat, timeout_s=spec.timeout_s,
            schedule=spec.schedule, memory_estimate_mb=memory_estimate_mb, harness_sched=sched,
            reported_kib_start=reported_kib(),
        )
        self.writer = RunWriter(out, self.manifest)
        self.rows = [
            InstanceRow(run_id=self.run_id, boot=spec.boot, accel=spec.accel, count=spec.count,
                        interval_ms=spec.interval_ms, memory_mb=spec.memory_mb,
                        repeat=spec.repeat, instance=i, planned_launch_s=p)
            for i, p in enumerate(spec.planned_s)
        ]
        self.order = sorted(range(spec.count), key=lambda i: spec.planned_s[i])
        self.tmpdir = tempfile.mkdtemp(prefix="bootstorm-")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": self.tmpdir,
                    "LC_ALL": "C"}
        self.live: dict[int, _Live] = {}
        self.fd_owner: dict[int, _Live] = {}
        self.epoll = select.epoll()
        self.timer = DeadlineTimer()
        self.epoll.register(self.timer.fd, select.EPOLLIN)
        self.outcome = "failed"
        self.status_for_rest: Status = "interrupted"
        self.t0 = now() + START_LEAD_S
        self.next_k = 0
        """Position in `order` of the next instance to launch."""
        self.unfinished = spec.count
        self.pending_cpu: list[_Live] = []
        """Instances seen ready in this batch of events, whose CPU time is still to be read."""

    def run(self) -> BurstResult:
        try:
            with terminate_as_exception():
                self._watch()
            self.on_deadline_or_done()
        except (KeyboardInterrupt, BurstInterrupted):
            self.on_interrupt()
            raise
        finally:
            self._stop_instances()
            self._record_unlaunched()
            self._write_manifest()
        if self.writer.error is not None:  # rows were lost: the run is not a result
            raise self.writer.error
        return BurstResult(run_id=self.run_id, out=self.out, rows=self.rows,
                           manifest=self.manifest)

    def _watch(self) -> None:
        """The event loop: until every instance has an outcome or the deadline passes."""
        spec = self.spec
        deadline = self.t0 + max(spec.planned_s) + spec.timeout_s
        self.timer.arm(self.t0 + spec.planned_s[self.order[0]])
        while self.unfinished > 0:
            wait = deadline - now()
            if wait <= 0:
                break
            # Output first, then at most one launch: a launcher that falls behind (sharing the
            # cores with the boots it starts) would otherwise launch every overdue instance
            # before reading anything, and stamp ready strings up to seconds late
            # (docs/findings.md, "The launcher").
            launch_due = False
            for fd, _mask in self.epoll.poll(wait):
                if fd == self.timer.fd:
                    launch_due = True
                else:
                    self.on_readable(fd, now())
            if launch_due:
                self.on_launch_due()
            # CPU time is read after the batch's timestamps are taken, so reading /proc
            # does not delay when a ready string is seen.
            self.on_batch_end()
            if self.writer.error is not None:  # (a full disk): stop here, outcome failed
                return

    def on_launch_due(self) -> None:
        """The timer fired: launch the next instance, re-arm for the one after (at once if it is
        due already, after the output that arrived meanwhile has been read)."""
        self.timer.consume()
        spec = self.spec
        if self.next_k < spec.count and self.t0 + spec.planned_s[self.order[self.next_k]] <= now():
            i = self.order[self.next_k]
            self.next_k += 1
            self._launch(i)
        if self.next_k < spec.count:
            self.timer.arm(self.t0 + spec.planned_s[self.order[self.next_k]])

    def _launch(self, i: int) -> None:
        """Spawn instance i (a failed spawn makes its row final)."""
        row = self.rows[i]
        # A signal between the launch time and `live` would lose the row (and its process)
        # from the clean-up: it waits until both agree.
        with signals_held():
            row.launch_s = now() - self.t0
            try:
                proc = spawn(self.argv, self.env)
            except OSError as err:
                row.stderr_tail = f"spawn failed: {err.strerror}"
                row.status = "spawn_failed"
                self.writer.append(row)
                self._emit("spawn_failed", row)
                self.unfinished -= 1
                return
            row.pid = proc.pid
            inst = _Live(row=row, proc=proc)
            self.live[i] = inst
            for pfd in (proc.stdout, proc.stderr):
                self.fd_owner[pfd] = inst
                self.epoll.register(pfd, select.EPOLLIN)
        self._emit("launched", row)

    def on_readable(self, fd: int, stamp: float) -> None:
        """An instance's stdout or stderr has data, or was closed."""
        inst = self.fd_owner.get(fd)
        if inst is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if fd == inst.proc.stderr:
            self.on_stderr(inst, fd, data)
        elif data:
            self.on_output(inst, data, stamp)
        else:
            self.on_exit(inst, fd)

    def on_stderr(self, inst: _Live, fd: int, data: bytes) -> None:
        """Keep the tail of what QEMU says on stderr (for the row of a failed instance)."""
        if data:
            inst.err += data
            del inst.err[:-4 * STDERR_TAIL]
        else:
            self._close_fd(fd)

    def on_output(self, inst: _Live, data: bytes, stamp: float) -> None:
        """Guest serial output: the first byte is the marker, the ready string is the outcome."""
        if not inst.out:
            inst.row.marker_s = stamp - self.t0
        inst.out += data
        if not inst.final and READY in inst.out:
            inst.row.ready_s = stamp - self.t0
            inst.final = True
            self.pending_cpu.append(inst)
            self.unfinished -= 1
        # Only what could still start the ready string is kept.
        del inst.out[:-len(READY)]

    def on_exit(self, inst: _Live, fd: int) -> None:
        """stdout closed: the process ended; before its ready string, that is a crash."""
        self._close_fd(fd)
        if not inst.final:
            inst.row.exit_code = try_reap(inst.proc.pid)
            inst.row.cpu_s = float("nan")
            self._finish(inst, "crashed")
            self.unfinished -= 1

    def on_batch_end(self) -> None:
        """Read the CPU time of the instances that became ready in this batch of events."""
        for inst in self.pending_cpu:
            inst.row.cpu_s, inst.row.wait_s = cpu_and_wait_seconds(inst.proc.pid)
            self._finish(inst, "ready")
        self.pending_cpu.clear()

    def on_deadline_or_done(self) -> None:
        """The loop ended by itself: instances still without an outcome timed out (unless a
        row could not be written: the run then failed, and the rest count as interrupted)."""
        if self.writer.error is not None:
            return
        self.outcome = "complete"
        self.status_for_rest = "timeout"

    def on_interrupt(self) -> None:
        """Ctrl-C, SIGTERM or SIGHUP: instances without an outcome count as interrupted."""
        self.outcome = "interrupted"

    def _stop_instances(self) -> None:
        """Read every live instance's final CPU time, kill and reap them all, record them."""
        self.timer.close()
        live = self.live.values()
        for inst in live:
            # What a ready instance keeps costing while idle: its CPU time at the end.
            inst.row.end_s = now() - self.t0
            inst.row.cpu_end_s, wait_end = cpu_and_wait_seconds(inst.proc.pid)
            if not inst.final:
                inst.row.cpu_s, inst.row.wait_s = inst.row.cpu_end_s, wait_end
        ended = kill_and_reap([inst.proc.pid for inst in live])
        for inst in live:
            code = ended.get(inst.proc.pid)
            # A crashed QEMU closes stdout while exiting; its status is its own even if our
            # SIGKILL arrived during the exit. Instances we killed keep exit_code None.
            if code is not None and inst.row.exit_code is None and (
                    inst.row.status == "crashed" or code != -signal.SIGKILL):
                inst.row.exit_code = code
            if not inst.final:
                self._finish(inst, self.status_for_rest)
            else:
                self.writer.append(inst.row)  # merged with its outcome row by the reader
        for fd in list(self.fd_owner):
            self._close_fd(fd)
        self.epoll.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _record_unlaunched(self) -> None:
        for row in self.rows:
            if row.launch_s != row.launch_s and row.status != "spawn_failed":
                row.status = self.status_for_rest
                self.writer.append(row)
        self.writer.close()

    def _write_manifest(self) -> None:
        manifest = self.manifest
        manifest.t0_monotonic = self.t0
        manifest.ended_at = _iso_now()
        manifest.reported_kib_end = reported_kib()
        manifest.outcome = self.outcome  # type: ignore[assignment]
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        manifest.status_counts = counts
        ready = [r.ready_s for r in self.rows if r.status == "ready"]
        figures = burst_figures(ready, everyone_ready=len(ready) == self.spec.count)
        manifest.first_ready_s = figures["first_ready_s"]
        manifest.all_ready_s = figures["all_ready_s"]
        try:
            self.writer.write_manifest()
            compact(self.out)
        except OSError as err:
            if self.writer.error is None:
                raise write_failure(self.out, err) from None
            # Rows were lost already (that is the error reported); the manifest says
            # `failed` if it could be written, else `running` -- never `complete`.

    def _emit(self, kind: str, row: InstanceRow) -> None:
        if self.on_event is not None:
            self.on_event(kind, row)

    def _finish(self, inst: _Live, status: Status) -> None:
        inst.final = True
        row = inst.row
        row.status = status
        row.stderr_tail = inst.err[-STDERR_TAIL:].decode(errors="replace")
        self.writer.append(row)
        self._emit(status, row)

    def _close_fd(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            self.epoll.unregister(fd)
        os.close(fd)
        self.fd_owner.pop(fd, None)
