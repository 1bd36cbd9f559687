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


class BurstInterrupted(Exception):
    """SIGTERM or SIGHUP arrived during a burst."""


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
