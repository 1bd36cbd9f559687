"""Scenario files: what validates, and how a mistake is reported (file:line:col: path: message,
with a did-you-mean), positions checked against the YAML text itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.files import ScenarioError, parse_yaml_model
from sim.policies import BatchingConfig, ConcurrencyCapConfig
from sim.scenario import BASE_DIR, Scenario, load_scenario
from sim.workloads.tenant_mix import TenantMix, tenant_seed

GOOD = """\
name: small
description: two nodes, two policies
seed: 7
replications: 2
cluster:
  nodes:
    - count: 2
      model: {cores: 2, work_s: 0.5}
workload:
  kind: poisson
  rate_per_s: 2
  duration_s: 5
  size: {kind: geometric, mean: 3}
policies:
  - name: immediate
  - name: concurrency_cap
    max_in_flight: 3
    placement: packing
metrics:
  slo: {time_to_first_s: 1.0}
"""
WORKLOAD = """\
workload:
  kind: poisson
  rate_per_s: 2
  duration_s: 5
  size: {kind: geometric, mean: 3}
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return caught.value.lines


def position(text: str, needle: str, occurrence: int = 0) -> str:
    """line:col (1-based) of the n-th occurrence of `needle` in `text`: the oracle."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{line}:{col}"


def test_a_good_scenario_validates_into_typed_policies(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, GOOD))
    sc = loaded.scenario
    assert sc.policy_names == ("immediate", "concurrency_cap")
    assert isinstance(sc.policies[1], ConcurrencyCapConfig)
    assert sc.policies[1].placement == "packing"
    assert sc.baseline_policy == "immediate", "immediate is the default baseline"
    assert sc.cluster.build().size == 2
    assert sc.metrics.slo.limits() == {"time_to_first_s": 1.0}
    assert len(loaded.sha256) == 64


def test_an_unknown_key_is_located_and_gets_a_did_you_mean(tmp_path: Path) -> None:
    text = GOOD.replace("placement: packing", "placment: packing")
    (line,) = errors_of(tmp_path, text)
    where = position(text, "placment")
    assert line == (f"{tmp_path / 'scenario.yaml'}:{where}: policies.1.placment: "
                    "unknown key 'placment'; did you mean 'placement'?")


def test_an_unknown_key_deep_in_the_workload_is_located(tmp_path: Path) -> None:
    text = GOOD.replace("{kind: geometric, mean: 3}", "{kind: geometric, maen: 3}")
    lines = errors_of(tmp_path, text)
    expected = f":{position(text, 'maen')}: workload.size.maen: unknown key 'maen'; did you mean"
    assert any(expected in line for line in lines), lines


@pytest.mark.parametrize(("old", "new", "culprit", "path", "says"), [
    ("name: concurrency_cap", "name: concurency_cap", "concurency_cap", "policies.1.name",
     "did you mean 'concurrency_cap'?"),
    ("max_in_flight: 3", "max_in_flight: lots", "lots", "policies.1.max_in_flight", "integer"),
    ("model: {cores: 2, work_s: 0.5}", "calibration: calibration/none.json",
     "calibration/none.json", "cluster.nodes.0.calibration", "file not found"),
])
def test_a_mistake_points_at_what_is_wrong(tmp_path: Path, old: str, new: str, culprit: str,
                                           path: str, says: str) -> None:
    text = GOOD.replace(old, new)
    (line,) = errors_of(tmp_path, text)
    assert f":{position(text, culprit)}: {path}: " in line
    assert says in line


def test_every_mistake_is_reported_one_line_each(tmp_path: Path) -> None:
    text = GOOD.replace("seed: 7", "seed: -1").replace("max_in_flight: 3", "max_in_flight: 0")
    lines = errors_of(tmp_path, text)
    assert len(lines) == 2
    assert lines[0].split(": ")[1] == "seed"
    assert lines[1].split(": ")[1] == "policies.1.max_in_flight"


def test_a_missing_setting_names_the_key(tmp_path: Path) -> None:
    text = GOOD.replace("    max_in_flight: 3\n", "")
    (line,) = errors_of(tmp_path, text)
    assert "policies.1: required key 'max_in_flight' is missing" in line


def test_broken_yaml_is_located(tmp_path: Path) -> None:
    text = GOOD.replace("seed: 7", "seed: [7")
    (line,) = errors_of(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'scenario.yaml'}:")
    assert "invalid YAML" in line
    assert line.count("\n") == 0


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (line,) = errors_of(tmp_path, "- just\n- a list\n")
    assert "must be a YAML mapping" in line


def test_a_missing_scenario_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "nope.yaml")
    assert caught.value.lines == [f"{tmp_path / 'nope.yaml'}: cannot read the file "
                                  "(No such file or directory); check the path"]


def test_two_policies_with_one_name_need_labels(tmp_path: Path) -> None:
    text = GOOD + "  - name: batching\n    window_s: 0.1\n  - name: batching\n    window_s: 0.5\n"
    text = text.replace("metrics:\n  slo: {time_to_first_s: 1.0}\n", "")
    (line,) = errors_of(tmp_path, text)
    assert "['batching'] appear twice" in line and "label" in line
    labelled = text.replace("window_s: 0.5", "window_s: 0.5\n    label: batching 0.5 s")
    sc = load_scenario(write(tmp_path, labelled)).scenario
    assert sc.policy_names[-2:] == ("batching", "batching 0.5 s")
    assert isinstance(sc.policies[-1], BatchingConfig)


def test_a_baseline_must_be_one_of_the_policies(tmp_path: Path) -> None:
    (line,) = errors_of(tmp_path, GOOD + "baseline: batching\n")
    assert "baseline 'batching' is not one of the policies" in line


def test_a_trace_path_resolves_next_to_the_scenario_and_dumps_absolute(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.csv").write_text("arrival_s,count\n0.0,3\n0.5,1\n")
    assert WORKLOAD in GOOD
    text = GOOD.replace(WORKLOAD, "workload:\n  kind: trace\n  path: traces/t.csv\n")
    sc = load_scenario(write(tmp_path, text)).scenario
    requests = list(sc.workload.requests(0, sc.seed))
    assert [(r.arrival_s, r.count) for r in requests] == [(0.0, 3), (0.5, 1)]
    # Plain data that validates again anywhere, with no base folder: what sweeps send out.
    again = Scenario.model_validate(sc.model_dump())
    assert again == sc


def test_a_node_group_needs_a_calibration_or_a_model(tmp_path: Path) -> None:
    text = GOOD.replace("      model: {cores: 2, work_s: 0.5}\n", "")
    (line,) = errors_of(tmp_path, text)
    assert "cluster.nodes.0: give exactly one of `calibration`" in line


def test_sweep_axes_are_kept_for_sim_sweep_and_must_not_be_empty(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, GOOD + "sweep:\n  cluster.nodes.0.count: [2, 4]\n")).scenario
    assert sc.sweep == {"cluster.nodes.0.count": (2, 4)}
    (line,) = errors_of(tmp_path, GOOD + "sweep:\n  cluster.nodes.0.count: []\n")
    assert "sweep axis 'cluster.nodes.0.count' has no values" in line


def test_parse_from_a_string_names_the_source() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_yaml_model("name: x\nseed: 1\n", Scenario, source="inline",
                         context={BASE_DIR: Path.cwd()})
    assert all(line.startswith("inline:") for line in caught.value.lines)


TENANTS = {
    "kind": "tenants",
    "tenants": {
        "web": {"kind": "poisson", "rate_per_s": 5, "duration_s": 20,
                "size": {"kind": "fixed", "count": 1}},
        "batch": {"kind": "poisson", "rate_per_s": 5, "duration_s": 20,
                  "size": {"kind": "fixed", "count": 50}},
    },
}


def test_tenants_draw_from_their_own_streams_and_merge_in_arrival_order() -> None:
    mix = TenantMix.model_validate(TENANTS)
    requests = list(mix.requests(0, 11))
    arrivals = [r.arrival_s for r in requests]
    assert arrivals == sorted(arrivals)
    assert [r.request_id for r in requests] == list(range(len(requests)))
    web = [r.arrival_s for r in requests if r.tenant == "web"]
    batch = [r.arrival_s for r in requests if r.tenant == "batch"]
    assert {r.count for r in requests if r.tenant == "batch"} == {50}
    # Same process and rate, different streams: the two tenants must not arrive together.
    assert web[:5] != batch[:5]
    assert tenant_seed(11, 0) != tenant_seed(11, 1)
    # Each tenant alone is the workload it names, seeded with its tenant seed.
    from sim.workloads.processes import PoissonWorkload
    alone = PoissonWorkload.model_validate(TENANTS["tenants"]["web"])  # type: ignore[index]
    assert web == [r.arrival_s for r in alone.requests(0, tenant_seed(11, 0))]


def test_the_same_seed_gives_the_same_tenant_mix_and_another_seed_another() -> None:
    mix = TenantMix.model_validate(TENANTS)
    assert list(mix.requests(1, 5)) == list(mix.requests(1, 5))
    assert list(mix.requests(1, 5)) != list(mix.requests(2, 5))


def test_a_scenario_accepts_a_tenant_mix(tmp_path: Path) -> None:
    assert WORKLOAD in GOOD
    text = GOOD.replace(WORKLOAD, yaml.safe_dump({"workload": TENANTS}))
    sc = load_scenario(write(tmp_path, text)).scenario
    assert isinstance(sc.workload, TenantMix)
    assert set(sc.workload.tenants) == {"web", "batch"}


def test_a_reference_must_name_policies_of_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "measured.csv").write_text("count,interval_ms,first_ready_s,all_ready_s\n")
    text = GOOD + ("reference:\n  path: measured.csv\n"
                   "  intervals_ms: {immediate: 0, fixed 5 ms: 5}\n")
    (line,) = errors_of(tmp_path, text)
    assert "reference.intervals_ms names ['fixed 5 ms']" in line
    good = text.replace("fixed 5 ms: 5", "concurrency_cap: 5")
    ref = load_scenario(write(tmp_path, good)).scenario.reference
    assert ref is not None and ref.path == (tmp_path / "measured.csv").resolve()
