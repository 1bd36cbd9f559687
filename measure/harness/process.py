"""Starting, watching and ending QEMU processes: fast spawn, no orphans, precise CPU time.

Each instance is spawned with posix_spawn (vfork: no copy of the harness's memory) through
`setpriv --pdeathsig KILL` first, so the kernel kills it if the harness dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
from dataclasses import dataclass

from sim.errors import UserError


@dataclass(slots=True)
class Spawned:
    """A started process and the read ends of its stdout and stderr pipes."""

    pid: int
    stdout: int
    stderr: int


def pdeathsig_prefix() -> list[str]:
    """The wrapper that makes the kernel SIGKILL an instance when the harness dies."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise UserError("setpriv (util-linux) not found; install it with `apt-get install "
                        "util-linux`: it ensures no QEMU outlives the harness")
    return [setpriv, "--pdeathsig", "KILL", "--"]


def normal_policy_prefix() -> list[str]:
    """The wrapper that puts an instance spawned by a SCHED_FIFO harness back on SCHED_OTHER."""
    chrt = shutil.which("chrt")
    if chrt is None:
        raise UserError("chrt (util-linux) not found; install util-linux or pass --no-realtime")
    return [chrt, "--other", "0"]


def cpus_prefix(cpus: str) -> list[str]:
    """The wrapper that moves an instance onto the CPUs `cpus` (a taskset list) before QEMU."""
    taskset = shutil.which("taskset")
    if taskset is None:
        raise UserError("taskset (util-linux) not found; install util-linux or use another "
                        "--launcher")
    return [taskset, "--cpu-list", cpus]


def raise_fd_limit(needed: int) -> None:
    """Each instance holds two pipe fds; lift the soft limit so large bursts fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 64
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise UserError(f"a burst this large needs {want} open files but the hard limit is "
                        f"{hard}; raise it (ulimit -Hn) or launch fewer instances")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def spawn(argv: list[str], env: dict[str, str]) -> Spawned:
    """Start argv in its own session (a terminal's Ctrl-C reaches only the harness, which then
    ends every instance itself) with stdin from /dev/null and nonblocking stdout/stderr pipes."""
    out_r, out_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            argv[0], argv, env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsid=True,
            setsigmask=(),  # the harness may hold signals while it spawns; QEMU must not
        )
    except OSError:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
        os.close(devnull)
    return Spawned(pid=pid, stdout=out_r, stderr=err_r)


def cpu_and_wait_seconds(pid: int) -> tuple[float, float]:
    """(CPU time, run-queue wait) summed over every live thread of a process, from schedstat.

    CPU time is user+system on a CPU; wait is time spent runnable but not running, the direct
    trace of contention. /proc/PID/stat counts in 10 ms ticks, too coarse for boots of tens of
    milliseconds; schedstat counts nanoseconds. NaN when the process is gone.
    """
    cpu = wait = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                fields = f.read().split()
            cpu += int(fields[0])
            wait += int(fields[1])
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return float("nan"), float("nan")
    return cpu / 1e9, wait / 1e9


def kill_and_reap(pids: list[int]) -> dict[int, int]:
    """SIGKILL every process, then wait for each; returns each one's exit status (-9 for those
    our SIGKILL ended). Killing all before reaping any lets the kernel tear the VMs down in
    parallel (one at a time takes tens of milliseconds each)."""
    ended: dict[int, int] = {}
    for pid in pids:
        code = try_reap(pid)
        if code is not None:
            ended[pid] = code
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        if pid not in ended:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(pid, 0)
                ended[pid] = os.waitstatus_to_exitcode(status)
    return ended


def try_reap(pid: int) -> int | None:
    """Exit status if the process has ended (reaping it), None if it still runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None
