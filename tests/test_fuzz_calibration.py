"""Calibration JSON as a user may hand it over: edited by hand (wrong types, unknown keys,
out-of-range and non-finite parameters, deleted keys), cut short by a copy, or holding junk bytes.
`measure predict` either prints four finite, ordered ready times or refuses the file in one line
(the same for a probe file carrying the calibration);
never a traceback and never NaN in its JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fuzz_support import (
    JUNK_VALUES,
    NON_FINITE,
    OUT_OF_RANGE,
    REPO,
    Done,
    assert_no_traceback,
    assert_one_line_naming,
    fuzz_settings,
    measure,
    mutated_tree,
    run_in_process,
)
from hypothesis import example, given
from hypothesis import strategies as st

SHIPPED = {name: json.loads((REPO / "calibration" / name).read_text())
           for name in ("firmware.json", "bios.json", "paper2016.json")}
STATS = ("first_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s")


def _strict_json(text: str) -> Any:
    """JSON as other tools read it: NaN and Infinity are not JSON."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON output")

    return json.loads(text, parse_constant=refuse)


@st.composite
def calibration_text(draw: st.DrawFn) -> tuple[bytes, str]:
    name = draw(st.sampled_from(sorted(SHIPPED)))
    tree = json.loads(json.dumps(SHIPPED[name]))
    how = draw(st.sampled_from(["model", "model", "section", "tree", "truncate", "junk_bytes"]))
    what = how
    if how == "model":
        # A node-model parameter edited by hand, consistently in `model` and `parameters` (the
        # file checks they agree) so that the edit reaches the model's own validation.
        param = draw(st.sampled_from(sorted(tree["model"])))
        value = draw(st.one_of(NON_FINITE, OUT_OF_RANGE, JUNK_VALUES))
        tree["model"][param] = value
        if param in tree["parameters"] and draw(st.booleans()):
            tree["parameters"][param]["value"] = value
        what = f"model.{param} = {value!r}"
    elif how == "section":
        section = draw(st.sampled_from(["model", "parameters", "settings", "provenance"]))
        tree[section], edits = draw(mutated_tree(tree[section]))
        what = f"{section}: {edits}"
    elif how == "tree":
        tree, edits = draw(mutated_tree(tree))
        what = str(edits)
    data = json.dumps(tree, indent=1).encode()
    if how == "truncate":
        cut = draw(st.integers(0, len(data) - 1))
        data, what = data[:cut], f"cut at byte {cut}"
    elif how == "junk_bytes":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=8))
        data, what = data[:at] + junk + data[at:], f"bytes {junk!r} at {at}"
    return data, f"{name}: {what}"


def check_prediction(done: Done, path: Path) -> None:
    assert_no_traceback(done)
    if done.code == 2:
        assert_one_line_naming(done, path)
        return
    result = _strict_json(done.stdout)
    values = [result[k] for k in STATS]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values), done.describe()
    assert 0 < values[0] <= values[1] <= values[2] <= values[3], done.describe()


def _with_interval(name: str, param: str, high: float) -> bytes:
    tree = json.loads(json.dumps(SHIPPED[name]))
    tree["parameters"][param]["high"] = high
    return json.dumps(tree).encode()


@fuzz_settings(120)
@given(case=calibration_text())
@example(case=(_with_interval("firmware.json", "work_s", 2.0), "an interval wider than the "
               "value: its normal draws go below zero, which a zero work would not survive"))
def test_predict_on_an_edited_calibration_is_finite_or_refused_in_one_line(
        case: tuple[bytes, str], folder: Path) -> None:
    data, _ = case
    path = folder / "edited.json"
    path.write_bytes(data)
    done = run_in_process("measure", "predict", "--calibration", path, "--count", "6",
                          "--interval-ms", "3", "--json")
    check_prediction(done, path)


def _with_model(name: str, **values: float) -> bytes:
    tree = json.loads(json.dumps(SHIPPED[name]))
    for param, value in values.items():
        tree["model"][param] = value
        tree["parameters"][param]["value"] = value
    return json.dumps(tree).encode()


@fuzz_settings(3)
@given(case=calibration_text())
@example(case=(_with_model("firmware.json", work_s=math.inf), "infinite work"))
@example(case=(_with_model("firmware.json", cores=math.inf), "infinite cores"))
@example(case=(b"\xff\xfe{", "not UTF-8"))
def test_predict_in_a_subprocess_keeps_the_contract(case: tuple[bytes, str], folder: Path
                                                    ) -> None:
    data, _ = case
    path = folder / "cli.json"
    path.write_bytes(data)
    done = measure("predict", "--calibration", path, "--count", "6", "--interval-ms", "3",
                   "--json", timeout=120)
    check_prediction(done, path)


PROBE = json.loads((REPO / "benchmarks" / "results" / "transfer" / "2026-11-30a"
                    / "probe-before.json").read_text())


@st.composite
def probe_text(draw: st.DrawFn) -> bytes:
    tree = json.loads(json.dumps(PROBE))
    how = draw(st.sampled_from(["speed", "speed", "tree", "truncate"]))
    if how == "speed":
        field = draw(st.sampled_from(sorted(tree["speed"])))
        tree["speed"][field] = draw(st.one_of(NON_FINITE, OUT_OF_RANGE, JUNK_VALUES))
    elif how == "tree":
        tree, _ = draw(mutated_tree(tree))
    data = json.dumps(tree).encode()
    if how == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    return data


@fuzz_settings(60)
@given(data=probe_text())
@example(data=json.dumps({**PROBE, "speed": {**PROBE["speed"], "boot_cpu_s": math.inf}}
                         ).encode())
@example(data=json.dumps({**PROBE, "speed": {**PROBE["speed"], "boot_cpu_s": 1e308}}
                         ).encode())
def test_predict_with_an_edited_probe_is_finite_or_refused_in_one_line(data: bytes,
                                                                       folder: Path) -> None:
    path = folder / "probe.json"
    path.write_bytes(data)
    done = run_in_process("measure", "predict", "--calibration",
                          REPO / "calibration" / "firmware.json", "--probe", path, "--count", "6",
                          "--interval-ms", "3", "--json")
    check_prediction(done, path)
