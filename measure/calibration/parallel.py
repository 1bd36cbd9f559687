"""Map a function over independent fits, in order, serially or in forked worker processes.

Each item's result depends on that item only, so the answer is the same for every number of jobs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from measure.calibration.options import Progress

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    function: Callable[[T], R], items: Sequence[T], jobs: int, say: Progress
) -> list[R]:
    """function over items, in order; in `jobs` forked processes when jobs > 1. Each item's
    result depends on that item only, so the answer is the same for every `jobs`."""
    if jobs <= 1 or len(items) <= 1:
        results = []
        for i, item in enumerate(items):
            results.append(function(item))
            say(f"fit {i + 1}/{len(items)} done")
        return results
    global _FORKED_FUNCTION
    _FORKED_FUNCTION = function  # inherited by the forked workers; lambdas cannot be pickled
    context = multiprocessing.get_context("fork")
    results = []
    # An executor, not a Pool: if a worker dies (the OOM killer during a measurement, say),
    # map() raises BrokenProcessPool instead of waiting forever for the lost result.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
        try:
            for i, result in enumerate(executor.map(_call_forked, items)):
                results.append(result)
                say(f"fit {i + 1}/{len(items)} done")
        except BrokenProcessPool:
            raise RuntimeError(
                "a fitting process died (out of memory?); rerun, or with fewer --jobs"
            ) from None
    return results


_FORKED_FUNCTION: Callable[[Any], Any] | None = None


def _call_forked(item: Any) -> Any:
    assert _FORKED_FUNCTION is not None
    return _FORKED_FUNCTION(item)
