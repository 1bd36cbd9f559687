"""Launch schedules (`sim schedule` output, `measure replay` input) edited or damaged: wrong
types, unknown keys, non-finite or negative times, launches out of order or missing, files cut
short. `measure replay` reads the schedule before it touches the host; here it is stopped right
after (an unknown --accel), so no guest boots: the file is refused in one line naming it, or it
is accepted and then holds only finite, ordered launch times.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    REPO,
    Done,
    assert_no_traceback,
    assert_one_line_naming,
    error_lines,
    fuzz_settings,
    measure,
    mutated_tree,
    non_finite_paths,
    run_in_process,
)
from hypothesis import example, given
from hypothesis import strategies as st

STOP = ("--accel", "no-such-accel")
"""Makes `measure replay` stop with a one-line error right after reading the schedule."""


@pytest.fixture(scope="module")
def shipped_schedule(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What `sim schedule` writes for the shipped replay scenario (interval 5 ms, 300 launches)."""
    out = tmp_path_factory.mktemp("schedule") / "interval-5.json"
    done = run_in_process("sim", "schedule", REPO / "scenarios" / "replay-host.yaml",
                          "--policy", "interval 5 ms", "--out", out)
    assert done.code == 0, done.describe()
    tree: dict[str, Any] = json.loads(out.read_text())
    tree["launches"] = tree["launches"][:20]  # a short schedule: the format matters, not length
    return tree


def replay_verdict(done: Done, path: Path) -> str:
    assert_no_traceback(done)
    lines = error_lines(done)
    if len(lines) == 1 and "accelerator" in lines[0] and STOP[1] in lines[0]:
        return "accepted"
    assert_one_line_naming(done, path)
    return "refused"


def _times_sane(tree: Any) -> bool:
    try:
        times = [float(launch["at_s"]) for launch in tree["launches"]]
    except (TypeError, KeyError, ValueError):
        return True  # a shape the model rejects on its own; the verdict already checked it
    return bool(times) and all(math.isfinite(t) and t >= 0 for t in times) and times == sorted(
        times)


@st.composite
def schedule_text(draw: st.DrawFn, tree: dict[str, Any]) -> tuple[bytes, Any]:
    how = draw(st.sampled_from(["tree", "tree", "launch", "truncate", "junk_bytes"]))
    tree = json.loads(json.dumps(tree))
    if how == "launch":
        i = draw(st.integers(0, len(tree["launches"]) - 1))
        tree["launches"][i]["at_s"] = draw(st.one_of(
            st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 1e300]),
            st.floats(min_value=0, max_value=1.0)))
    elif how == "tree":
        tree, _ = draw(mutated_tree(tree))
    data = json.dumps(tree).encode()
    if how == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
        return data, None
    if how == "junk_bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:], None
    return data, tree


@fuzz_settings(120)
@given(data=st.data())
def test_an_edited_schedule_is_refused_in_one_line_or_holds_sane_times(
        data: st.DataObject, shipped_schedule: dict[str, Any], folder: Path) -> None:
    text, tree = data.draw(schedule_text(shipped_schedule))
    path = folder / "edited.json"
    path.write_bytes(text)
    done = run_in_process("measure", "replay", path, "--out", folder / "ds", *STOP)
    if replay_verdict(done, path) == "accepted" and tree is not None:
        assert not non_finite_paths(tree), "a schedule with a non-finite number was accepted"
        assert _times_sane(tree), "a schedule with unordered or negative times was accepted"
    assert not (folder / "ds").exists(), "a refused replay created its --out dataset"


@pytest.mark.parametrize("at_s", ["Infinity", "NaN", "1e400"])
def test_replay_refuses_a_non_finite_launch_time_in_a_subprocess(
        at_s: str, shipped_schedule: dict[str, Any], folder: Path) -> None:
    tree = json.loads(json.dumps(shipped_schedule))
    tree["launches"][-1]["at_s"] = 12345.678  # the last launch: order stays valid for +inf
    text = json.dumps(tree).replace("12345.678", at_s)
    path = folder / f"{at_s}.json"
    path.write_text(text)
    done = measure("replay", path, "--out", folder / "ds-cli", *STOP, timeout=120)
    assert replay_verdict(done, path) == "refused"


@fuzz_settings(2)
@given(data=st.data())
@example(data=None)
def test_replay_in_a_subprocess_keeps_the_contract(
        data: st.DataObject | None, shipped_schedule: dict[str, Any], folder: Path) -> None:
    text = b"{\"version\": 1, \"launches\": [" if data is None else data.draw(
        schedule_text(shipped_schedule))[0]
    path = folder / "cli.json"
    path.write_bytes(text)
    done = measure("replay", path, "--out", folder / "ds-cli2", *STOP, timeout=120)
    replay_verdict(done, path)
