"""Figures and tables of docs/calibration.md, drawn from the calibration files themselves.

Usage: .venv/bin/python benchmarks/calibration_report.py [calibration/NAME.json ...]
Writes docs/img/calibration-NAME.png (predicted vs measured, every configuration),
docs/img/calibration-NAME-cdf.png (per-instance data: CDFs of held-out bursts) and rewrites the
tables between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in docs/calibration.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from measure.calibration.data import Burst, load_calibration_data
from sim.model.calibration import Calibration, ConfigurationFit, Errors, load_calibration

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "calibration.md"
IMG = ROOT / "docs" / "img"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _errors_row(label: str, errors: Errors) -> str:
    cells = [_pct(errors.first_ready), _pct(errors.all_ready), _pct(errors.ready_w1)]
    return f"| {label} | " + " | ".join(cells) + " |"


def tables(cal: Calibration) -> str:
    """Markdown: parameters, errors vs baseline, family selection, per configuration."""
    host = cal.provenance.host
    configurations = cal.provenance.configurations
    lines = [
        f"Family `{cal.family}` (version {cal.family_version})"
        + (f", {cal.model.launcher} launcher" if cal.model.launcher != "realtime" else "")
        + f"; host: {host.description}"
        f" ({host.source}); {sum(c.runs for c in configurations)} runs"
        f" in {len(configurations)} configurations; {cal.settings.bootstrap} bootstrap refits,"
        f" {100 * cal.settings.interval_level:.0f} % intervals.",
        "",
        "| parameter | value | interval | source | unit | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in cal.parameters.items():
        interval = f"{p.low:.4g} - {p.high:.4g}" if p.source != "fixed" else "-"
        lines.append(
            f"| `{name}` | {p.value:.4g} | {interval} | {p.source} | {p.unit} | {p.meaning} |"
        )
    lines += [
        "",
        "Median relative error over runs (W1: Wasserstein-1 distance of the ready-time "
        "distribution / makespan):",
        "",
        "| predictor | first ready | all ready | W1 |",
        "|---|---|---|---|",
        _errors_row("model, training", cal.fit.model.training),
        _errors_row("model, leave one count out", cal.fit.model.leave_one_count_out),
        _errors_row("model, leave one interval out", cal.fit.model.leave_one_interval_out),
        _errors_row("straight line, training", cal.fit.baseline.training),
        _errors_row("straight line, leave one count out", cal.fit.baseline.leave_one_count_out),
        _errors_row(
            "straight line, leave one interval out", cal.fit.baseline.leave_one_interval_out
        ),
        "",
        "Candidate families (chosen: least held-out loss):",
        "",
        "| family | free | held-out loss | LOCO first | LOCO all | LOIO first | LOIO all "
        "| LOCO W1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in sorted(cal.fit.families, key=lambda f: f.heldout_loss):
        loco, loio = f.scores.leave_one_count_out, f.scores.leave_one_interval_out
        free = ", ".join(f.free) + (" (work measured)" if f.measured_work else "")
        cells = [loco.first_ready, loco.all_ready, loio.first_ready, loio.all_ready, loco.ready_w1]
        lines.append(
            f"| `{f.family}` | {free} | {f.heldout_loss:.0f} | "
            + " | ".join(_pct(c) for c in cells) + " |"
        )
    lines += [
        "",
        "Per configuration (seconds; measured = median over runs; held out = predicted by the "
        "fit that never saw this count):",
        "",
        "<details><summary>table</summary>",
        "",
        "| count | interval ms | runs | first measured | first fitted | first held out "
        "| all measured | all fitted | all held out | line held out (first / all) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cal.fit.configurations:
        lines.append(
            f"| {c.count} | {c.interval_ms:g} | {c.runs} | {c.measured_first_ready_s:.3g} | "
            f"{c.fitted_first_ready_s:.3g} | {c.count_heldout_first_ready_s:.3g} | "
            f"{c.measured_all_ready_s:.3g} | {c.fitted_all_ready_s:.3g} | "
            f"{c.count_heldout_all_ready_s:.3g} | {c.baseline_count_heldout_first_ready_s:.3g} / "
            f"{c.baseline_count_heldout_all_ready_s:.3g} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines)


def plot_scatter(cal: Calibration, out: Path) -> None:
    """Predicted vs measured first and all-ready for every configuration."""
    configs = cal.fit.configurations
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, metric, title in (
        (axes[0], "first_ready_s", "first ready"),
        (axes[1], "all_ready_s", "all ready"),
    ):
        measured = np.array([getattr(c, f"measured_{metric}") for c in configs])
        series = (
            ("fitted", "fitted", "o", "C0"),
            ("held out (count)", "count_heldout", "s", "C3"),
            ("straight line, held out (count)", "baseline_count_heldout", "x", "0.5"),
        )
        low, high = measured.min(), measured.max()
        for label, prefix, marker, color in series:
            predicted = np.array([getattr(c, f"{prefix}_{metric}") for c in configs])
            ax.scatter(measured, predicted, marker=marker, s=18, color=color, label=label,
                       alpha=0.8)
            shown = predicted[predicted > 0]
            low, high = min(low, shown.min()), max(high, shown.max())
        low, high = low / 1.2, high * 1.2
        ax.plot([low, high], [low, high], color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {title} (s, median over runs)")
        ax.set_ylabel(f"predicted {title} (s)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    _save(fig, f"calibration {cal.name}: {cal.family}, every configuration", out)


def _save(fig: Figure, title: str, out: Path) -> None:
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_vs_interval(cal: Calibration, out: Path) -> None:
    """Measured and held-out predicted first/all-ready against the interval, one line per count."""
    counts = sorted({c.count for c in cal.fit.configurations})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, count in enumerate(counts):
        rows = sorted(
            (c for c in cal.fit.configurations if c.count == count), key=lambda c: c.interval_ms
        )
        x = [c.interval_ms for c in rows]
        color = f"C{i % 10}"
        for ax, metric in ((axes[0], "first_ready_s"), (axes[1], "all_ready_s")):
            ax.plot(x, [getattr(c, f"measured_{metric}") for c in rows], "o", color=color,
                    ms=4, label=f"{count} measured")
            ax.plot(x, [getattr(c, f"count_heldout_{metric}") for c in rows], "-", color=color,
                    lw=1, label=f"{count} held out")
    for ax, title in ((axes[0], "first ready"), (axes[1], "all ready")):
        ax.set_xlabel("launch interval (ms)")
        ax.set_ylabel(f"{title} (s)")
        ax.set_title(title)
    axes[1].legend(fontsize=6, ncol=2)
    _save(
        fig,
        f"calibration {cal.name}: dots measured (median over runs), "
        "lines predicted with the count held out",
        out,
    )


def plot_cdfs(cal: Calibration, bursts: list[Burst], out: Path) -> None:
    """ECDF of each measured run of a few configurations against the held-out forecast."""
    configs = [c for c in cal.fit.configurations if c.count_heldout_quantiles_s is not None]
    if not configs:
        return
    counts = sorted({c.count for c in configs})
    intervals = sorted({c.interval_ms for c in configs})
    wanted = [
        (counts[0], intervals[0]), (counts[-1], intervals[0]),
        (counts[len(counts) // 2], intervals[len(intervals) // 2]), (counts[-1], intervals[-1]),
    ]  # fmt: skip
    picked: list[ConfigurationFit] = []
    for key in wanted:
        match = next((c for c in configs if (c.count, c.interval_ms) == key), None)
        if match is not None and match not in picked:
            picked.append(match)
    fig, axes = plt.subplots(1, len(picked), figsize=(4 * len(picked), 3.8), squeeze=False)
    for ax, config in zip(axes[0], picked, strict=True):
        runs = [b for b in bursts if b.key == (config.count, config.interval_ms)]
        for j, run in enumerate(runs):
            assert run.ready_s is not None
            times = np.sort(run.ready_s[np.isfinite(run.ready_s)])
            ax.step(times, np.arange(1, times.size + 1) / times.size, where="post", color="0.4",
                    lw=0.8, label="measured runs" if j == 0 else None)
        quantiles = np.asarray(config.count_heldout_quantiles_s)
        levels = (np.arange(quantiles.size) + 0.5) / quantiles.size
        ax.plot(quantiles, levels, color="C3", lw=2, label="predicted, count held out")
        w1 = config.count_heldout_ready_w1
        ax.set_title(f"{config.count} at {config.interval_ms:g} ms (W1 {_pct(w1)})", fontsize=9)
        ax.set_xlabel("ready time from burst start (s)")
        ax.set_ylabel("fraction ready")
        ax.legend(fontsize=7)
    _save(fig, f"calibration {cal.name}: held-out bursts", out)


def update_doc(name: str, text: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(doc):
        print(f"docs/calibration.md has no {name} markers; tables not written", file=sys.stderr)
        return
    DOC.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), doc))


def main(paths: list[str]) -> None:
    targets = [Path(p) for p in paths] or sorted((ROOT / "calibration").glob("*.json"))
    IMG.mkdir(parents=True, exist_ok=True)
    for path in targets:
        cal = load_calibration(path)
        plot_scatter(cal, IMG / f"calibration-{cal.name}.png")
        plot_vs_interval(cal, IMG / f"calibration-{cal.name}-interval.png")
        if cal.provenance.data_files[0].kind == "instances":
            sources = [ROOT / f.path for f in cal.provenance.data_files]
            bursts = list(load_calibration_data(sources).bursts)
            plot_cdfs(cal, bursts, IMG / f"calibration-{cal.name}-cdf.png")
        update_doc(cal.name, tables(cal))
        print(f"{cal.name}: figures in {IMG.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
