"""A scenario: the cluster (node groups and their calibrations), the workload, the policies to
compare, metrics and SLOs, replications and seed. Pure validated data, loaded from YAML.

Paths (calibrations, traces) are resolved while validating, against the scenario file's folder
and then the repository root, and stored absolute: a validated scenario dumps to a plain dict that
validates again anywhere (what the runner, sim/sweep/runner.py, sends to its workers).

Sweeps (issue 7): a top-level `sweep:` maps dotted paths into the scenario to lists of values,
e.g. `sweep: {cluster.nodes.0.count: [4, 8, 16], policies.1.window_s: [0.1, 0.5]}`; each point of
the cross product is the scenario with those values set. `sim run` runs the scenario as written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.engine.cluster import Cluster, NodeGroup
from sim.errors import UserError
from sim.files import load_yaml_model
from sim.model.calibration import (
    Calibration,
    calibration_with_launcher,
    carried_model,
    with_launcher,
)
from sim.model.node_model import LauncherMode, NodeModel
from sim.model.probe import ProbeFile, load_probe
from sim.model.ranges import DataRange, data_range
from sim.policies import PolicySpec
from sim.workloads.processes import DailyWorkload, MMPPWorkload, PoissonWorkload, TraceWorkload
from sim.workloads.tenant_mix import TenantMix

BASE_DIR = "base_dir"
"""Validation context key: folder that relative paths in the scenario are resolved against."""

Statistic = Literal["mean", "p50", "p95", "p99"]
MetricName = Literal["time_to_first_s", "time_to_all_s", "instance_latency_s"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def repo_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding pyproject.toml."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def resolve_path(raw: str | Path, info: ValidationInfo) -> Path:
    """An existing file: absolute as given, else relative to the scenario's folder, else to the
    repository root. Raises ValueError naming where it looked."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        base = Path((info.context or {}).get(BASE_DIR, Path.cwd()))
        candidates = [base / path]
        root = repo_root(base.resolve())
        if root is not None and root != base.resolve():
            candidates.append(root / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = " or ".join(str(c) for c in candidates)
    raise ValueError(f"file not found: {looked}; give a path relative to the scenario file "
                     "or to the repository root")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- cluster -------------------------------------------------------------------------------------


class NodeGroupSpec(_Frozen):
    """`count` nodes behaving as a calibration file (or an inline model) says."""

    count: int = Field(ge=1)
    calibration: Path | None = None
    """A calibration JSON written by `measure calibrate` (resolved to an absolute path)."""
    model: NodeModel | None = None
    """Node-model parameters given inline instead of a calibration (what-if nodes, tests)."""
    probe: Path | None = None
    """A probe file written by `measure probe` on the host these nodes stand for: the
    calibration is carried to that host (docs/calibration.md, Transfer)."""
    launcher: LauncherMode | None = None
    """realtime (launches on time), fair (the launcher shares the nodes' cores) or reserved
    (the launcher has one of the cores to itself); fair and reserved need a calibration with a
    launcher fit. Default: the calibration's or the inline model's."""
    name: str | None = None
    """Label of the group; defaults to the calibration's name."""

    _calibration: Any = PrivateAttr(default=None)
    _probe: ProbeFile | None = PrivateAttr(default=None)
    _probed: NodeModel | None = PrivateAttr(default=None)
    _launched: NodeModel | None = PrivateAttr(default=None)

    @field_validator("calibration", "probe", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str | Path):
            raise ValueError(f"{info.field_name} must be a file path")
        return resolve_path(value, info)

    @model_validator(mode="after")
    def _load(self) -> NodeGroupSpec:
        if (self.calibration is None) == (self.model is None):
            raise ValueError("give exactly one of `calibration` (a file) or `model` (inline)")
        if self.calibration is not None:
            from sim.model.calibration import CalibrationFileError, load_calibration

            try:
                self._calibration = load_calibration(self.calibration)
            except CalibrationFileError as exc:
                raise ValueError(str(exc)) from None
        if self.probe is not None:
            if self._calibration is None:
                raise ValueError("a probe carries a calibration to its host: give `calibration`")
            try:
                self._probe = load_probe(self.probe)
                self._probed = carried_model(self._calibration, self._probe, str(self.probe))
            except UserError as exc:
                raise ValueError(str(exc)) from None
        try:
            self._launched = with_launcher(self._base_model, self.launcher,
                                           f"launcher: {self.launcher}")
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def loaded_calibration(self) -> Calibration | None:
        """The group's calibration as read from its file, with the group's launcher (None: an
        inline model)."""
        calibration: Calibration | None = self._calibration
        if calibration is None or self.launcher is None:
            return calibration
        return calibration_with_launcher(calibration, self.launcher, f"launcher: {self.launcher}")

    @property
    def loaded_probe(self) -> ProbeFile | None:
        """The probe the calibration is carried with (None: none)."""
        return self._probe

    @property
    def _base_model(self) -> NodeModel:
        if self.model is not None:
            return self.model
        if self._probed is not None:
            return self._probed
        model: NodeModel = self._calibration.model
        return model

    @property
    def node_model(self) -> NodeModel:
        assert self._launched is not None
        return self._launched

    @property
    def data_range(self) -> DataRange | None:
        """What the group's calibration has seen (None: an inline model)."""
        return None if self._calibration is None else data_range(self._calibration)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self._calibration is not None:
            return str(self._calibration.name)
        return "inline"

    def provenance(self) -> dict[str, Any]:
        """Where this group's node model came from, for reports."""
        out: dict[str, Any] = {"name": self.label, "count": self.count}
        if self.calibration is None:
            out["model"] = "inline in the scenario"
            out["parameters"] = self.node_model.model_dump()
            return out
        cal = self._calibration
        out["calibration"] = str(self.calibration)
        out["sha256"] = sha256_file(self.calibration)
        out["family"] = f"{cal.family} v{cal.family_version}"
        out["parameters"] = self.node_model.model_dump()
        out["host"] = cal.provenance.host.description
        if self.probe is not None:
            out["probe"] = f"{self.probe} (carried to the probed host: work_s and cores)"
        held = cal.fit.model.leave_one_count_out
        out["heldout_error"] = (f"median relative error, leave one count out: first ready "
                                f"{held.first_ready:.1%}, all ready {held.all_ready:.1%}")
        out["data_files"] = [f"{d.path} ({d.rows} rows, sha256 {d.sha256[:12]})"
                             for d in cal.provenance.data_files]
        return out


class ClusterSpec(_Frozen):
    nodes: tuple[NodeGroupSpec, ...] = Field(min_length=1)
    """Node groups, numbered in order: group 0's nodes first."""

    def build(self) -> Cluster:
        return Cluster(groups=tuple(
            NodeGroup(count=g.count, model=g.node_model, name=g.label) for g in self.nodes
        ))


# --- workload ------------------------------------------------------------------------------------

WorkloadSpec = Annotated[
    PoissonWorkload | MMPPWorkload | DailyWorkload | TraceWorkload | TenantMix,
    Field(discriminator="kind"),
]


# --- metrics -------------------------------------------------------------------------------------


class SloSpec(_Frozen):
    """Per-request limits; the report gives the fraction of requests within each."""

    time_to_first_s: float | None = Field(default=None, gt=0)
    time_to_all_s: float | None = Field(default=None, gt=0)

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ObjectiveSpec(_Frozen):
    """What `sim tune` minimises, and the constraint it keeps."""

    metric: MetricName = "time_to_first_s"
    stat: Statistic = "p95"
    all_ready_slack: float | None = Field(default=0.1, ge=0)
    """Keep the same statistic of time to all ready within (1 + slack) of the best setting
    tried; None: no constraint."""


class ReferenceSpec(_Frozen):
    """Measured bursts to set beside the simulated ones (the study's table for paper-host)."""

    path: Path
    """CSV with count, interval_ms, first_ready_s, all_ready_s and, if measured, p10_ready_s
    (other columns ignored; rows of one (count, interval) are averaged)."""
    intervals_ms: dict[str, float] = Field(min_length=1)
    """Policy label -> the interval_ms of the CSV rows it is compared with."""
    source: str = ""
    """Where the measurements come from, for the report."""

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str | Path):
            raise ValueError("path must be a file path")
        return resolve_path(value, info)


class MetricsSpec(_Frozen):
    slo: SloSpec = SloSpec()
    objective: ObjectiveSpec = ObjectiveSpec()


# --- scenario ------------------------------------------------------------------------------------


class Scenario(_Frozen):
    """Everything `sim run` needs to compare policies on one platform and workload."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(ge=0)
    replications: int = Field(default=5, ge=1)
    sample_period_s: float | None = Field(default=0.1, gt=0)
    """Node samples (instances in flight, CPU busy) every this many seconds; None: none."""
    until_s: float | None = Field(default=None, gt=0)
    """Stop each run at this simulated time (None: when every instance is ready)."""
    cluster: ClusterSpec
    workload: WorkloadSpec
    policies: tuple[PolicySpec, ...] = Field(min_length=1)
    baseline: str | None = None
    """Policy the others are compared against (paired differences); default `immediate` when
    the scenario has it."""
    metrics: MetricsSpec = MetricsSpec()
    reference: ReferenceSpec | None = None
    """Measured bursts the report compares request by request size (single-node scenarios)."""
    sweep: dict[str, tuple[Any, ...]] = Field(default_factory=dict)
    """Sweep axes for `sim sweep` (dotted path -> values); `sim run` ignores them."""

    @field_validator("workload", mode="before")
    @classmethod
    def _resolve_traces(cls, value: Any, info: ValidationInfo) -> Any:
        """Trace paths (also inside tenants) resolve like calibrations."""
        if not isinstance(value, dict):
            return value
        if value.get("kind") == "trace" and isinstance(value.get("path"), str | Path):
            return {**value, "path": resolve_path(value["path"], info)}
        if value.get("kind") == "tenants" and isinstance(value.get("tenants"), dict):
            return {**value, "tenants": {
                name: cls._resolve_traces(spec, info) for name, spec in value["tenants"].items()
            }}
        return value

    @field_validator("sweep")
    @classmethod
    def _non_empty_axes(cls, value: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        for path, values in value.items():
            if not values:
                raise ValueError(f"sweep axis {path!r} has no values")
        return value

    @model_validator(mode="after")
    def _names(self) -> Scenario:
        names = [p.display_name for p in self.policies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"policies {duplicates} appear twice; give each a distinct `label`")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not one of the policies {names}")
        if self.reference is not None:
            unknown = sorted(set(self.reference.intervals_ms) - set(names))
            if unknown:
                raise ValueError(f"reference.intervals_ms names {unknown}, which are not "
                                 f"policies of the scenario: {names}")
        return self

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.display_name for p in self.policies)

    @property
    def baseline_policy(self) -> str | None:
        """The explicit baseline, else `immediate` if compared, else none."""
        if self.baseline is not None:
            return self.baseline
        return "immediate" if "immediate" in self.policy_names else None


class LoadedScenario(BaseModel):
    """A validated scenario and the file it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    scenario: Scenario
    path: Path
    sha256: str

    def provenance(self) -> dict[str, Any]:
        return {
            "scenario": {"file": str(self.path), "sha256": self.sha256,
                         "name": self.scenario.name, "seed": self.scenario.seed,
                         "replications": self.scenario.replications},
            "node_groups": [g.provenance() for g in self.scenario.cluster.nodes],
            **({"reference": {"file": str(self.scenario.reference.path),
                              "sha256": sha256_file(self.scenario.reference.path),
                              "source": self.scenario.reference.source}}
               if self.scenario.reference is not None else {}),
            "bootstorm_version": metadata.version("bootstorm"),
        }


def load_scenario(path: Path) -> LoadedScenario:
    """Read and validate a scenario file; raises ScenarioError with `file:line:col` lines."""
    scenario = load_yaml_model(path, Scenario, context={BASE_DIR: path.parent})
    return LoadedScenario(scenario=scenario, path=path.resolve(), sha256=sha256_file(path))


def with_probe(loaded: LoadedScenario, probe: Path) -> tuple[LoadedScenario, list[str]]:
    """The scenario with each node group of the probe's boot path whose calibration records its
    host (per-instance data) carried to the host `probe` measured (`sim schedule --probe`), and
    the labels of the groups carried. None of them: one UserError line."""
    probed = load_probe(probe)
    groups, carried = [], []
    for group in loaded.scenario.cluster.nodes:
        cal = group.loaded_calibration
        if (cal is None or cal.host_reference is None or cal.provenance.boot != probed.boot):
            groups.append(group)
            continue
        groups.append(NodeGroupSpec.model_validate(
            {**group.model_dump(exclude={"probe"}), "probe": probe.resolve()}))
        carried.append(group.label)
    if not carried:
        raise UserError(f"--probe {probe}: no node group of {loaded.path.name} has a calibration "
                        f"of the `{probed.boot}` boot path from per-instance data to carry; "
                        "drop --probe")
    cluster = loaded.scenario.cluster.model_copy(update={"nodes": tuple(groups)})
    scenario = loaded.scenario.model_copy(update={"cluster": cluster})
    return loaded.model_copy(update={"scenario": scenario}), carried


def node_extrapolations(scenario: Scenario, peaks: Mapping[int, int]) -> list[str]:
    """One sentence for each node group with a node that had more instances booting at once
    (`peaks`: node -> most in flight) than the largest burst of its calibration's data."""
    notes = []
    first = 0
    for group in scenario.cluster.nodes:
        seen = group.data_range
        mine = [peaks[n] for n in range(first, first + group.count) if n in peaks]
        first += group.count
        if seen is None or not mine or max(mine) <= seen.count[1]:
            continue
        notes.append(f"node group {group.label}: up to {max(mine)} instances booting at once on "
                     f"a node, beyond the calibration's data (bursts of {seen.count[0]}-"
                     f"{seen.count[1]} instances)")
    return notes
