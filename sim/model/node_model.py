"""The node model's parameters (as a calibration file stores them) and the per-instance work
they imply: one definition of the work draws for calibration and the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

LauncherMode = Literal["realtime", "fair", "reserved"]
"""How a node's launcher is scheduled (NodeModel.launcher)."""


class NodeModel(BaseModel):
    """The parameters of one node, as a calibration file stores them."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    cores: float = Field(gt=0)
    """Effective cores of the node; instances in their CPU phase share them all, less the one a
    reserved launcher keeps (boot_cores)."""
    work_s: float = Field(gt=0)
    """Mean CPU time (seconds) an instance's initialisation needs when it runs alone."""
    delay_s: float = Field(default=0.0, ge=0)
    """Pure delay before the CPU phase (exec, page faults): does not contend for CPU."""
    work_cv: float = Field(default=0.0, ge=0)
    """Coefficient of variation of the per-instance work (lognormal around work_s)."""
    max_rate: float = Field(default=1.0, gt=0)
    """Most cores one instance can use at once."""
    idle_load: float = Field(default=0.0, ge=0)
    """Cores each ready-but-running instance keeps using (a halted QEMU still costs a little)."""
    spawn_s: float = Field(default=0.0, ge=0)
    """Launcher serialisation: effective starts are at least this far apart."""
    min_capacity: float = Field(default=0.05, gt=0)
    """Capacity left to booting instances however many ready instances idle on the node."""
    background_jobs: float = Field(default=0.0, ge=0)
    """CPU-bound threads outside the instances (other load on the host) that share the cores
    fairly with instances in their CPU phase: each then gets cores / (k + background_jobs).
    Added by the calibration of this host's datasets (docs/model.md); 0: none."""
    warmup_s: float = Field(default=0.0, ge=0)
    """Node warm-up: an instance started on a node with nothing in flight opens a window of
    warmup_s during which no instance's CPU phase begins (0: none). Added by the calibration of
    the 2016 study, where nothing is ready for seconds after a burst starts, whatever the
    interval (docs/model.md)."""
    work_floor: float = Field(default=0.0, ge=0, lt=1)
    """Fraction of the mean work every instance needs at least (the part of a boot that does
    not vary): work = work_s * (work_floor + (1 - work_floor) * lognormal), still of mean work_s
    and CV work_cv (docs/model.md). 0: plain lognormal."""
    work_growth: float = Field(default=0.0, ge=0)
    """Relative extra CPU work of a boot per instance already on the node when it starts
    (booting or ready): its work is w * (1 + work_growth * residents). Measured on this host from
    per-instance CPU time, which grows with the instances launched before (docs/model.md); 0:
    none."""
    reclaimed_memory_s: float = Field(default=0.0, ge=0)
    """Extra CPU a boot needs when the fresh memory it faults in is memory the host has taken
    back (free page reporting on a nested VM: the host backs and zeroes it again), over memory
    the host still backs: the instance's fresh memory times the difference of the two fault
    prices, measured by `measure probe` (docs/model.md, "Memory"); 0: none."""
    backed_instances: float = Field(default=0.0, ge=0)
    """How many instances' fresh memory the node's free memory still backed by the host holds
    when a burst starts on a settled node: the instance that starts with r instances on the
    node pays the part of reclaimed_memory_s for which r + 1 exceeds it."""
    launcher: LauncherMode = "realtime"
    """How the node's launcher is scheduled (docs/model.md, "The launcher"). "realtime"
    (SCHED_FIFO): launches happen at their planned times, the launcher's own CPU being absorbed
    in `cores`. "fair": the launcher shares the cores with the boots it starts, each launch a
    CPU job of launch_cpu_s, so launches fall behind as the node fills. "reserved": the launcher
    has a core of its own (one of `cores`, which the instances no longer share), where launches
    take reserved_launch_s each, one after the other, whatever the boots do."""
    launch_cpu_s: float = Field(default=0.0, ge=0)
    """CPU time one launch needs from a fair launcher (the spawn and the child's exec), and from
    a reserved one while launch_alone_s is 0; 0, or a realtime launcher: launches take no
    time."""
    launch_alone_s: float = Field(default=0.0, ge=0)
    """How long one launch takes on a reserved launcher's own core (the spawn, the CPU-pinning
    wrapper's exec and QEMU's exec), measured from the spacing of queued launches in reserved
    runs (measure calibrate-launcher); 0: launch_cpu_s stands in for it, an upper bound (the
    fair fit absorbs rivals a launcher alone on its core does not have)."""
    lock_s: float = Field(default=0.0, ge=0)
    """CPU time (at the processor-sharing rate) an instance holds the node's VM-creation lock:
    QEMU's KVM_CREATE_VM takes one global kernel mutex, so instances pass it one at a time, and
    while its holder waits for a core in the crowd the others sleep (docs/model.md, "The
    VM-creation lock"). It is part of the instance's work. 0: no lock."""
    lock_at: float = Field(default=0.0, ge=0, le=1)
    """Share of an instance's work done before it asks for the VM-creation lock (QEMU's
    start-up before KVM_CREATE_VM); unused while lock_s is 0."""

    @model_validator(mode="after")
    def _a_reserved_core_leaves_one(self) -> NodeModel:
        if self.launcher == "reserved" and not self.cores > 1.0:
            raise ValueError(f"a reserved launcher needs more than one core (cores is "
                             f"{self.cores:g}): nothing would be left for the instances")
        return self

    @model_serializer(mode="wrap")
    def _without_a_plain_launcher(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The launcher's, the lock's and the memory price's fields are left out while they leave
        # the model as it was before they existed: calibration files, scenario keys (sweep unit
        # names) and reports written since stay byte for byte the same.
        data: dict[str, Any] = handler(self)
        if self.launcher == "realtime":
            data.pop("launcher", None)
        if self.launch_cpu_s == 0.0:
            data.pop("launch_cpu_s", None)
        if self.launch_alone_s == 0.0:
            data.pop("launch_alone_s", None)
        if self.lock_s == 0.0:
            data.pop("lock_s", None)
        if self.lock_at == 0.0:
            data.pop("lock_at", None)
        if self.reclaimed_memory_s == 0.0:
            data.pop("reclaimed_memory_s", None)
        if self.backed_instances == 0.0:
            data.pop("backed_instances", None)
        return data

    @property
    def launches_take_cpu(self) -> bool:
        """Each launch is a CPU job sharing the node's cores (a fair launcher with a cost)."""
        return self.launcher == "fair" and self.launch_cpu_s > 0.0

    @property
    def launches_queue(self) -> bool:
        """Launches can fall behind their planned times: a fair launcher with a cost, or a
        reserved one whose launches take time."""
        return self.launches_take_cpu or self.reserved_launch_s > 0.0

    @property
    def boot_cores(self) -> float:
        """Cores the instances share: `cores`, less the one a reserved launcher keeps."""
        return self.cores - 1.0 if self.launcher == "reserved" else self.cores

    @property
    def reserved_launch_s(self) -> float:
        """How long each launch takes on a reserved launcher's own core: launch_alone_s, or
        launch_cpu_s while that is 0 (0: no such launcher)."""
        if self.launcher != "reserved":
            return 0.0
        return self.launch_alone_s if self.launch_alone_s > 0.0 else self.launch_cpu_s

    @property
    def has_lock(self) -> bool:
        """Instances pass the node's VM-creation lock one at a time (lock_s > 0)."""
        return self.lock_s > 0.0

    def capacity(self, n_ready: int) -> float:
        """Cores left for the CPU phase with `n_ready` ready instances still running."""
        return max(self.min_capacity, self.boot_cores - self.idle_load * n_ready)

    @property
    def work_sigma(self) -> float:
        """Sigma of the log of the varying part's multiplier (mean 1), so that the whole work has
        CV work_cv: the varying part, (1 - work_floor) of the mean, has CV work_cv / (1 -
        work_floor)."""
        cv = self.work_cv / (1.0 - self.work_floor)
        return math.sqrt(math.log1p(cv * cv))

    @property
    def work_fixed_s(self) -> float:
        """The work every instance needs: work_s * work_floor."""
        return self.work_s * self.work_floor

    @property
    def work_varying_s(self) -> float:
        """Mean of the part of the work that varies: work_s * (1 - work_floor)."""
        return self.work_s - self.work_fixed_s


def work_from_normal(model: NodeModel, z: np.ndarray) -> np.ndarray:
    """Per-instance work from standard normal draws:
    work_fixed_s + work_varying_s * exp(sigma*z - sigma^2/2)."""
    sigma = model.work_sigma
    return model.work_fixed_s + model.work_varying_s * np.exp(
        sigma * np.asarray(z, dtype=float) - 0.5 * sigma * sigma
    )


def draw_work(model: NodeModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the CPU work of `n` instances (lognormal, mean work_s, CV work_cv).

    Always consumes n normal draws, even when work_cv is 0, so streams stay aligned across models.
    """
    return work_from_normal(model, rng.standard_normal(n))


class WorkFromNormal:
    """work_from_normal() for plain floats, its parameters computed once: the simulator draws
    one instance's work per launch, too few at a time for numpy to pay off.

    The same expression in the same order; math.exp, not numpy's exp, which may differ in the
    last bit (the simulator's records are defined with math.exp).
    """

    __slots__ = ("fixed", "half_var", "sigma", "varying")

    def __init__(self, model: NodeModel) -> None:
        self.sigma = model.work_sigma
        self.half_var = 0.5 * self.sigma * self.sigma
        self.fixed = model.work_fixed_s
        self.varying = model.work_varying_s

    def of(self, z: Sequence[float], indices: Iterable[int]) -> list[float]:
        """The work of the instances `indices`, from their standard normal draws z[index]."""
        exp = math.exp
        sigma = self.sigma
        half_var = self.half_var
        fixed = self.fixed
        varying = self.varying
        return [fixed + varying * exp(sigma * z[index] - half_var) for index in indices]

