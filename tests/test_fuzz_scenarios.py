"""Scenario YAML as users get it wrong: mutations of the shipped scenarios (wrong types, unknown
keys, out-of-range and non-finite values, deleted keys, empty lists, deep nesting, files cut short
or holding junk bytes) are accepted or refused with located lines, never a traceback.

Breadth runs in this process through `sim tune SCENARIO --policy <none>`, which loads and
validates the scenario and then stops at the unknown policy without simulating anything; the
contract of `sim run` itself (exit status, stderr, no --out folder left by a failure) is checked
on a few subprocess runs of a small scenario.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_support import (
    DEEP,
    JUNK_SCALARS,
    NON_FINITE,
    REPO,
    UNKNOWN_KEY,
    Done,
    assert_no_traceback,
    deep_nesting,
    error_lines,
    fuzz_settings,
    get_at,
    mutated_tree,
    node_paths,
    non_finite_paths,
    run_in_process,
    sim,
)
from hypothesis import example, given
from hypothesis import strategies as st

NO_POLICY = "no-such-policy-zz"
"""`sim tune --policy` with this name validates the scenario, then stops before simulating."""
FREE_FORM = ("sweep",)
"""Top-level keys whose contents `sim run` does not validate (`sim sweep` does, per point)."""


def _absolute_files(tree: Any, folder: Path) -> Any:
    """File names in a scenario made absolute, so that a mutated copy in a temporary folder still
    finds its calibrations and traces (the loader resolves against the scenario's folder and
    then the repository root)."""
    if isinstance(tree, dict):
        return {k: _absolute_files(v, folder) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_absolute_files(v, folder) for v in tree]
    if isinstance(tree, str) and tree.endswith((".json", ".csv")):
        for base in (folder, REPO):
            if (base / tree).is_file():
                return str((base / tree).resolve())
    return tree


SHIPPED: dict[str, Any] = {
    path.name: _absolute_files(yaml.safe_load(path.read_text()), path.parent)
    for path in sorted((REPO / "scenarios").glob("*.yaml"))
}


@st.composite
def scenario_text(draw: st.DrawFn, tree: Any) -> tuple[bytes, Any, list[str]]:
    """A shipped scenario with 1-3 edits of its parsed tree, sometimes also damaged as text."""
    mutated, edits = draw(mutated_tree(tree))
    text = yaml.safe_dump(mutated, sort_keys=False, allow_unicode=True)
    if DEEP in text:
        depth = draw(st.integers(1, 5000))
        text = text.replace(DEEP, deep_nesting(depth))
        edits.append(f"nesting depth {depth}")
    data = text.encode()
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "junk_bytes"]))
    if damage == "truncate":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut]
        edits.append(f"cut at byte {cut}")
    elif damage == "junk_bytes":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=8))
        data = data[:at] + junk + data[at:]
        edits.append(f"bytes {junk!r} at {at}")
    return data, mutated if damage == "none" else None, edits


def verdict(done: Done, path: Path) -> str:
    """'refused' (every stderr line locates a problem in the file) or 'accepted' (the scenario
    loaded and `sim tune` stopped at the unknown policy); anything else fails the test."""
    assert_no_traceback(done)
    assert done.code == 2, done.describe()
    lines = error_lines(done)
    assert lines, done.describe()
    if all(line.startswith(str(path)) for line in lines):
        return "refused"
    assert len(lines) == 1 and f"unknown policy {NO_POLICY!r}" in lines[0], done.describe()
    return "accepted"


def _keys(tree: Any) -> set[str]:
    return {str(p[-1]) for p in node_paths(tree) if p and p[0] not in FREE_FORM}


@fuzz_settings(60)
@given(data=st.data())
def test_a_mutated_shipped_scenario_is_refused_with_located_lines_or_loads(
        data: st.DataObject, folder: Path) -> None:
    name = data.draw(st.sampled_from(sorted(SHIPPED)), label="scenario")
    text, tree, edits = data.draw(scenario_text(SHIPPED[name]), label="mutation")
    path = folder / name
    path.write_bytes(text)
    done = run_in_process("sim", "tune", path, "--policy", NO_POLICY)
    outcome = verdict(done, path)
    if outcome == "accepted" and tree is not None:
        # What a scenario can never sensibly hold, the loader must refuse.
        assert not non_finite_paths(tree, skip=FREE_FORM), (
            f"non-finite number accepted after {edits}")
        assert UNKNOWN_KEY not in _keys(tree), f"unknown key accepted after {edits}"


@pytest.mark.parametrize("depth", [50, 2000])
def test_deeply_nested_yaml_is_refused_not_a_traceback(folder: Path, depth: int) -> None:
    path = folder / "deep.yaml"
    path.write_text(f"name: deep\nseed: {deep_nesting(depth)}\n")
    assert verdict(run_in_process("sim", "tune", path, "--policy", NO_POLICY), path) == "refused"


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00junk", b"- a\n- b\n", b"name: [unclosed"])
def test_a_scenario_that_is_not_a_mapping_is_refused(folder: Path, content: bytes) -> None:
    path = folder / "odd.yaml"
    path.write_bytes(content)
    assert verdict(run_in_process("sim", "tune", path, "--policy", NO_POLICY), path) == "refused"


# --- the contract of `sim run` itself, in a subprocess ------------------------------------------

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 5,
    "replications": 1,
    "sample_period_s": 0.5,
    "cluster": {"nodes": [{"count": 2, "model": {"cores": 2, "work_s": 0.05, "work_cv": 0.2}}]},
    "workload": {"kind": "poisson", "rate_per_s": 2, "duration_s": 3,
                 "size": {"kind": "uniform", "low": 1, "high": 4}},
    "policies": [{"name": "immediate"}, {"name": "concurrency_cap", "max_in_flight": 2}],
    "metrics": {"slo": {"time_to_first_s": 0.5}},
}
"""A scenario that runs in a second, so that an accepted mutation is cheap to run."""

CHEAP_JUNK = st.one_of(st.text(max_size=6), st.booleans(), st.none(), NON_FINITE,
                       st.lists(JUNK_SCALARS, max_size=2))
"""Wrong values that cannot make an accepted scenario expensive (no huge counts or rates)."""


@st.composite
def tiny_mutation(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    tree = json.loads(json.dumps(TINY))
    path = draw(st.sampled_from([p for p in node_paths(tree) if p]))
    kind = draw(st.sampled_from(["junk", "unknown_key", "delete", "empty_list"]))
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    if kind == "junk":
        parent[path[-1]] = draw(CHEAP_JUNK)
    elif kind == "unknown_key":
        target = get_at(tree, path)
        (target if isinstance(target, dict) else parent)[UNKNOWN_KEY] = 1
    elif kind == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = []
    return tree, f"{kind} at {'.'.join(map(str, path))}"


def assert_run_contract(done: Done, scenario: Path, out: Path) -> None:
    """Exit 0 with records and report, or exit 2 with located lines and no --out folder."""
    assert_no_traceback(done)
    if done.code == 0:
        for name in ("report.md", "report.html", "records/requests.parquet",
                     "records/instances.parquet", "records/nodes.parquet"):
            assert (out / name).is_file(), f"{name} missing after exit 0\n{done.describe()}"
        return
    lines = error_lines(done)
    assert lines and all(str(scenario) in line or line.startswith("error: ")
                         for line in lines), done.describe()
    assert not out.exists(), f"a failed run left {sorted(p.name for p in out.iterdir())} " \
                             f"in --out\n{done.describe()}"


@fuzz_settings(2)
@given(mutation=tiny_mutation())
@example(mutation=({**TINY, "sample_period_s": float("inf")}, "infinite sample period"))
def test_sim_run_on_a_mutated_scenario_exits_0_or_2_and_leaves_no_partial_output(
        mutation: tuple[dict[str, Any], str], folder: Path) -> None:
    tree, _ = mutation
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = folder / "out"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    done = sim("run", path, "--out", out, "--json", timeout=120)
    assert_run_contract(done, path, out)
