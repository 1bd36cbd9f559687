"""Figures of a policy comparison, rendered off-screen to PNG bytes: CDFs of time to first and to
all ready, initialisations in flight over time, and a per-instance timeline of one burst."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: reports are built in CI and over SSH

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

MAX_CDF_POINTS = 2000
"""A CDF is drawn through at most this many quantiles: the picture is the same, the file small."""


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes (and closed, so that long reports do not pile up figures)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def cdf_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) of the empirical CDF, thinned to MAX_CDF_POINTS quantiles."""
    x = np.sort(values[np.isfinite(values)])
    if x.size == 0:
        return x, x
    if x.size > MAX_CDF_POINTS:
        q = np.linspace(0.0, 1.0, MAX_CDF_POINTS)
        return np.quantile(x, q), q
    return x, np.arange(1, x.size + 1) / x.size


def cdf_figure(requests: pd.DataFrame, column: str, policies: Sequence[str], title: str
               ) -> bytes:
    """Empirical CDF of one per-request column, one line per policy (all replications pooled)."""
    figure, ax = plt.subplots(figsize=(7.0, 4.0))
    low, high = float("inf"), 0.0
    for policy in policies:
        x, f = cdf_points(requests.loc[requests.policy == policy, column].to_numpy(dtype=float))
        if x.size:
            ax.step(x, f, where="post", label=policy)
            low, high = min(low, float(x[0])), max(high, float(x[-1]))
    # Long tails (requests that queued) would squeeze everyone else into the left edge.
    if low > 0 and high > 20 * low:
        ax.set_xscale("log")
    ax.set_xlabel(f"{column.removesuffix('_s').replace('_', ' ')} (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    _legend(ax)
    return png(figure)


def in_flight_figure(node_samples: pd.DataFrame, policies: Sequence[str], replication: int
                     ) -> bytes:
    """Initialisations in flight summed over all nodes against time, one line per policy."""
    figure, ax = plt.subplots(figsize=(7.0, 4.0))
    for policy in policies:
        mine = node_samples[(node_samples.policy == policy)
                            & (node_samples.replication == replication)]
        if mine.empty:
            continue
        total = mine.groupby("t_s", sort=True)["in_flight"].sum()
        ax.step(total.index.to_numpy(), total.to_numpy(), where="post", label=policy)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("instances initialising (all nodes)")
    ax.set_title(f"Initialisations in flight (replication {replication})")
    ax.grid(alpha=0.3)
    _legend(ax)
    return png(figure)


def burst_timeline_figure(instances: pd.DataFrame, arrival_s: float, request_id: int,
                          replication: int, policies: Sequence[str]) -> bytes:
    """One request under each policy: a bar per instance from its launch to its ready time,
    relative to the request's arrival (same request in every policy: common random numbers)."""
    figure, axes = plt.subplots(len(policies), 1, figsize=(7.0, 1.1 + 1.5 * len(policies)),
                                sharex=True, squeeze=False)
    for ax, policy in zip(axes[:, 0], policies, strict=True):
        mine = instances[(instances.policy == policy) & (instances.replication == replication)
                         & (instances.request_id == request_id)]
        mine = mine.sort_values(["launch_s", "ready_s"])
        launch = mine.launch_s.to_numpy(dtype=float) - arrival_s
        ready = mine.ready_s.to_numpy(dtype=float) - arrival_s
        rows = np.arange(launch.size)
        ax.hlines(rows, launch, ready, linewidth=1.0, color="tab:blue")
        ax.plot(ready, rows, "|", markersize=3, color="tab:red")
        ax.set_ylabel("instance", fontsize="small")
        ax.set_title(policy, fontsize="small", loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the request arrived (bar: launch to ready)")
    figure.suptitle(f"Request {request_id} (replication {replication}), instance by instance")
    return png(figure)
