"""The harness's scheduling priority and its signals during a burst: SCHED_FIFO so that launches
are not delayed behind the QEMU processes measured, and SIGTERM/SIGHUP turned into an exception
(or held for a moment) so that every instance is stopped and every measured row kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

from sim.errors import UserError
from sim.model.node_model import LauncherMode


class BurstInterrupted(Exception):
    """SIGTERM or SIGHUP arrived during a burst."""


REALTIME_PRIORITY = 10


@contextlib.contextmanager
def harness_priority(launcher: LauncherMode) -> Iterator[str]:
    """Run the harness as the platform's launcher `launcher`. Yields a description for the
    manifest (launcher_mode() reads the mode back from it).

    realtime: SCHED_FIFO, so that launches and reads are not delayed behind the very QEMU
    processes it measures. posix_spawn (vfork) suspends the harness until the child's first
    exec; that exec must not wait behind dozens of booting instances, so the child keeps
    SCHED_FIFO for it, and the first program it runs is `chrt --other 0`, which drops to the
    normal policy before QEMU starts.
    fair: the normal policy, sharing the cores with the boots.
    reserved: the normal policy on a CPU of its own (the first it may use); each child starts
    there and its first program, `taskset`, moves it to the other CPUs before QEMU starts
    (instance_cpus())."""
    if launcher == "fair":
        yield "SCHED_OTHER (realtime off)"
        return
    if launcher == "reserved":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise UserError(f"--launcher reserved needs 2 or more CPUs and this process may use "
                            f"{len(cpus)}; use --launcher realtime or fair")
        os.sched_setaffinity(0, cpus[:1])
        try:
            yield (f"SCHED_OTHER on reserved CPU {cpus[0]}; instances on CPUs "
                   f"{','.join(map(str, cpus[1:]))}")
        finally:
            os.sched_setaffinity(0, cpus)
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


def instance_cpus(harness_sched: str) -> str | None:
    """The CPUs (a taskset list) a reserved launcher's instances run on, from its description;
    None for the other launchers."""
    marker = "; instances on CPUs "
    if "reserved CPU" not in harness_sched or marker not in harness_sched:
        return None
    return harness_sched.split(marker, 1)[1]


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
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
def signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP (delivered, and raised as exceptions, on exit)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
