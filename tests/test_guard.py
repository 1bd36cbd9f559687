"""The memory guard refuses what would not fit and names the largest burst that would."""

from __future__ import annotations

import pytest

from measure.harness.guard import RESERVE_MB, SAFETY, MemoryEstimate, check_memory
from sim.errors import UserError


def test_largest_safe_count_fits_and_one_more_does_not() -> None:
    est = MemoryEstimate(per_instance_mb=16.0, shared_mb=20.0, available_mb=4096.0)
    n = est.largest_safe()
    assert n == int((4096 - RESERVE_MB - 20) / (16 * SAFETY))
    check_memory(n, est)
    with pytest.raises(UserError, match=f"largest safe burst here is {n}"):
        check_memory(n + 1, est)


def test_a_host_without_room_allows_nothing() -> None:
    est = MemoryEstimate(per_instance_mb=16.0, shared_mb=20.0, available_mb=500.0)
    assert est.largest_safe() == 0
    with pytest.raises(UserError):
        check_memory(1, est)
