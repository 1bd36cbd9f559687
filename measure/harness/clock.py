"""Absolute-deadline wake-ups on CLOCK_MONOTONIC through a timerfd the event loop can watch.

Python's epoll timeout is rounded up to whole milliseconds; a timerfd wakes the loop at the deadline
itself, so launches follow their plan without a drifting sleep loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p]


def now() -> float:
    """CLOCK_MONOTONIC in seconds: the one clock every timestamp of a burst is taken on."""
    return time.monotonic()


class DeadlineTimer:
    """A timerfd armed at absolute CLOCK_MONOTONIC deadlines."""

    def __init__(self) -> None:
        fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self.fd: int = fd

    def arm(self, deadline: float) -> None:
        """Fire once at `deadline` (monotonic seconds); a past deadline fires at once."""
        deadline = max(deadline, 1e-9)
        sec = int(deadline)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, int((deadline - sec) * 1e9)))
        if _libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")

    def disarm(self) -> None:
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(0, 0))
        _libc.timerfd_settime(self.fd, 0, ctypes.byref(spec), None)

    def consume(self) -> None:
        """Acknowledge an expiry so the fd stops being readable."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        os.close(self.fd)
