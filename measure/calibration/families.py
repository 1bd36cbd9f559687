"""The candidate models a calibration chooses from: node-model parameters and their subsets.

Bounds and scales of every parameter, the families, and which families each kind of data tries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.model import calibration as cf
from sim.model.node_model import LauncherMode

FAMILY_VERSION = 1
"""Bump when a family's meaning (free parameters, bounds, objective) changes."""


@dataclass(frozen=True)
class Parameter:
    unit: str
    meaning: str
    low: float
    high: float
    scale: float
    """Typical size: the optimiser works on value/scale so finite-difference steps fit it."""


PARAMETERS: dict[str, Parameter] = {
    "cores": Parameter("CPUs", "effective CPUs the instances share", 0.1, 256, 1.0),
    "work_s": Parameter("CPU s", "mean CPU work of one instance's contended phase", 1e-4, 50, 0.1),
    "delay_s": Parameter("s", "pure delay before the CPU phase (does not contend)", 0, 60, 1.0),
    "work_cv": Parameter("1", "coefficient of variation of the work across instances", 0, 3, 0.3),
    "max_rate": Parameter("CPUs", "most CPU one instance can use at once", 1e-3, 8, 0.1),
    "idle_load": Parameter(
        "CPUs", "CPU a ready, still running instance keeps using", 0, 0.2, 0.001
    ),
    "spawn_s": Parameter("s", "launcher serialisation: least time between two starts", 0, 1, 0.01),
    "min_capacity": Parameter("CPUs", "capacity floor under idle load", 0, 256, 0.05),
    "background_jobs": Parameter(
        "threads", "CPU-bound threads outside the instances sharing the cores fairly", 0, 50, 1.0
    ),
    "work_floor": Parameter(
        "1", "fraction of the mean work every instance needs at least", 0, 0.95, 0.1
    ),
    "work_growth": Parameter(
        "1", "relative extra work of a boot per instance already on the node", 0, 1, 0.001
    ),
    "warmup_s": Parameter(
        "s", "node warm-up: no CPU phase starts before this long after the burst's first start",
        0, 60, 1.0,
    ),
    "launch_cpu_s": Parameter(
        "CPU s", "CPU one launch needs from a fair-share launcher", 1e-5, 0.5, 0.01
    ),
    "lock_s": Parameter(
        "CPU s", "CPU (at the processor-sharing rate) an instance holds the node's VM-creation "
        "lock for", 0, 0.05, 0.001
    ),
    "lock_at": Parameter(
        "share of work", "share of a boot's CPU done before it asks for the VM-creation lock "
        "(measured from kernel traces)", 0, 1, 0.1
    ),
}

LOCK_AT = 0.65
"""Share of a boot's CPU done before QEMU asks for the VM-creation lock (KVM_CREATE_VM's global
mutex): the median of 0.64-0.66 over 1,900 traced instances (benchmarks/stall_trace.py, 400 at
4 ms and 1,000 at 6 ms, both launchers, 2026-12-01: the main thread's CPU before its wait on the
mutex over the instance's CPU until ready). Measured, not fitted: the lock families fix it."""


@dataclass(frozen=True)
class Family:
    """A candidate model: which NodeModel parameters are fitted; the rest keep their defaults.

    With fitted work (summary tables), cores is fixed to the host's CPUs because it trades off
    exactly against work and rate. With measured work (per-instance CPU time), work_s and
    work_cv are the measured mean and CV and cores becomes identifiable: the effective CPUs."""

    name: str
    free: tuple[str, ...]
    description: str
    measured_work: bool = False
    launcher: LauncherMode = "realtime"
    """The launcher the family's model has: a string, so fixed by the family, never fitted.
    "fair" families free launch_cpu_s (docs/model.md, "The launcher")."""
    lock_at: float = 0.0
    """Where the family's instances ask for the VM-creation lock (LOCK_AT in the families that
    free lock_s; docs/model.md, "The VM-creation lock")."""


FAMILIES: tuple[Family, ...] = (
    Family("ps", ("work_s",), "processor sharing only"),
    Family("ps_delay", ("work_s", "delay_s"), "pure delay, then processor sharing"),
    Family("ps_delay_cv", ("work_s", "delay_s", "work_cv"), "+ work varying across instances"),
    Family(
        "ps_delay_cv_cap", ("work_s", "delay_s", "work_cv", "max_rate"), "+ per-instance rate cap"
    ),
    Family(
        "ps_delay_cv_idle",
        ("work_s", "delay_s", "work_cv", "idle_load"),
        "+ CPU used by ready instances",
    ),
    Family(
        "ps_delay_cv_spawn", ("work_s", "delay_s", "work_cv", "spawn_s"), "+ launcher serialisation"
    ),
    Family(
        "warmup_ps_delay_cv", ("warmup_s", "work_s", "delay_s", "work_cv"), "node warm-up, then PS"
    ),
    Family(
        "warmup_ps_delay_cv_idle",
        ("warmup_s", "work_s", "delay_s", "work_cv", "idle_load"),
        "node warm-up + CPU used by ready instances",
    ),
    Family("cpu_ps", ("cores",), "measured work, processor sharing on effective cores", True),
    Family("cpu_ps_delay", ("cores", "delay_s"), "measured work, pure delay, then PS", True),
    Family(
        "cpu_ps_delay_cap", ("cores", "delay_s", "max_rate"), "measured work + rate cap", True
    ),
    Family(
        "cpu_ps_delay_spawn", ("cores", "delay_s", "spawn_s"), "measured work + launcher", True
    ),
    Family(
        "cpu_warmup_ps_delay",
        ("cores", "delay_s", "warmup_s"),
        "measured work + node warm-up",
        True,
    ),
    Family(
        "cpu_ps_bg", ("cores", "background_jobs"), "measured work + background load", True
    ),
    Family(
        "cpu_ps_delay_bg",
        ("cores", "delay_s", "background_jobs"),
        "measured work + pure delay + background load",
        True,
    ),
    Family(
        "cpu_warmup_ps_delay_bg",
        ("cores", "delay_s", "warmup_s", "background_jobs"),
        "measured work + node warm-up + background load",
        True,
    ),
    Family(
        "warmup_ps_delay_cv_bg",
        ("warmup_s", "work_s", "delay_s", "work_cv", "background_jobs"),
        "node warm-up + background load",
    ),
    Family(
        "warmup_ps_delay_cv_floor",
        ("warmup_s", "work_s", "delay_s", "work_cv", "work_floor"),
        "node warm-up + work with a floor (a fixed part and a lognormal part)",
    ),
    Family(
        "lock_ps_delay_cv",
        ("work_s", "delay_s", "work_cv", "lock_s"),
        "+ the VM-creation lock (instances pass KVM_CREATE_VM's global mutex one at a time)",
        lock_at=LOCK_AT,
    ),
    Family(
        "fair_launcher_ps_delay_cv_idle",
        ("launch_cpu_s", "work_s", "delay_s", "work_cv", "idle_load"),
        "fair-share launcher (launches fall behind as the node fills) instead of a warm-up",
        launcher="fair",
    ),
    Family(
        "warmup_fair_launcher_ps_delay_cv_idle",
        ("warmup_s", "launch_cpu_s", "work_s", "delay_s", "work_cv", "idle_load"),
        "node warm-up + fair-share launcher + CPU used by ready instances",
        launcher="fair",
    ),
)
FAMILY_BY_NAME = {family.name: family for family in FAMILIES}


SUMMARY_FAMILIES = (
    "ps", "ps_delay", "ps_delay_cv", "ps_delay_cv_cap", "ps_delay_cv_idle", "ps_delay_cv_spawn",
    "warmup_ps_delay_cv", "warmup_ps_delay_cv_idle",
    "fair_launcher_ps_delay_cv_idle", "warmup_fair_launcher_ps_delay_cv_idle",
)
"""Tried on summary tables, which know no CPU time: the work is fitted. The table's launcher is
the study's (normal priority, one thread per instance), so the fair-launcher families apply."""
INSTANCE_FAMILIES = (
    "cpu_ps", "cpu_ps_delay", "cpu_ps_delay_cap", "cpu_ps_delay_spawn", "cpu_warmup_ps_delay",
    "cpu_ps_bg", "cpu_ps_delay_bg", "cpu_warmup_ps_delay_bg",
    "ps_delay_cv", "warmup_ps_delay_cv", "warmup_ps_delay_cv_bg", "warmup_ps_delay_cv_floor",
    "lock_ps_delay_cv",
)
"""Tried on per-instance datasets: measured work and, for comparison, fitted work. The idle
load and the growth of work with residents are measured on such data
(measure/calibration/host_costs.py), so no family fits them. Their runs' launcher is the
harness's realtime one (fair-launcher runs are fitted apart, by launcher_fit.py), so no
fair-launcher family either."""


def default_families(kind: cf.InputKind) -> tuple[str, ...]:
    return SUMMARY_FAMILIES if kind == "summary_table" else INSTANCE_FAMILIES
