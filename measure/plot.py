"""The study's figures drawn from a dataset: per-instance init time against launch order, and
first/all-ready against count and against interval (medians over repeats, min-max bars)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from measure.harness.summary import per_config, per_run


def plot_dataset(instances: pd.DataFrame, out: Path) -> list[Path]:
    """Write PNG figures into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    runs = per_run(instances)
    configs = per_config(runs)
    for boot, g in instances.groupby("boot"):
        first_runs = runs[(runs.boot == boot)].sort_values("repeat").groupby(
            ["count", "interval_ms", "memory_mb"]).head(1)
        panels = first_runs.sort_values(["count", "interval_ms"]).head(12)
        ncol = min(4, len(panels))
        nrow = (len(panels) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
        for ax, (_, run) in zip(axes.flat, panels.iterrows(), strict=False):
            r = g[g.run_id == run.run_id].sort_values("instance")
            ok = r.status == "ready"
            ax.plot(r.instance[ok], (r.ready_s - r.launch_s)[ok], ".", ms=3, label="init time")
            ax.plot(r.instance[ok], r.ready_s[ok], ".", ms=3, label="ready (from burst start)")
            ax.set_title(f"{run['count']} at {run.interval_ms:g} ms, {run.memory_mb} MB",
                         fontsize=9)
            ax.set_xlabel("launch order")
            ax.set_ylabel("s")
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(f"{boot}: per-instance initialisation time (cf. the study's Figs. 2-4)")
        fig.tight_layout()
        path = out / f"{boot}-per-instance.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
        cb = configs[configs.boot == boot]
        for x, series in (("count", "interval_ms"), ("interval_ms", "count")):
            fig, axes2 = plt.subplots(1, 2, figsize=(10, 4))
            for ax, metric in zip(axes2, ("first_ready_s", "all_ready_s"), strict=True):
                for key, s in cb.groupby(series):
                    cols = [f"{metric}_median", f"{metric}_min", f"{metric}_max"]
                    s = s.groupby(x)[cols].median()
                    med = s[f"{metric}_median"]
                    err = [med - s[f"{metric}_min"], s[f"{metric}_max"] - med]
                    label = f"{key:g} ms" if series == "interval_ms" else f"{key} instances"
                    ax.errorbar(s.index, med, yerr=err, marker="o", ms=3, capsize=2, label=label)
                ax.set_xlabel("instances" if x == "count" else "launch interval (ms)")
                ax.set_ylabel(f"{metric.replace('_s', '').replace('_', ' ')} (s)")
                ax.grid(alpha=0.3)
            axes2[1].legend(fontsize=7)
            fig.suptitle(f"{boot}: first and all ready against {x.replace('_ms', '')} "
                         "(median over repeats, min-max bars)")
            fig.tight_layout()
            path = out / f"{boot}-ready-vs-{x.replace('_ms', '')}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written
