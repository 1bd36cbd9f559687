"""Shared pieces of the property-based tests (tests/test_fuzz_*.py): one fixed hypothesis
profile, the `sim` and `measure` commands run as a user runs them, and the contract they keep.

The contract for any file a user writes or a run leaves behind: exit 0 with a valid result, or
exit 2 with one line on stderr naming the file and the problem; never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
SIM = [sys.executable, "-c", "from sim.cli import main; main()"]
MEASURE = [sys.executable, "-c", "from measure.cli import main; main()"]
"""What the `measure` console script runs."""


def fuzz_settings(examples: int) -> settings:
    """Deterministic (same examples on every run and in CI), no example database in the repo,
    no per-example deadline (a command's start-up varies with the machine's load), and no
    shrinking: a failing input is reported as generated, so that a failure costs no more time
    than a pass (shrinking re-runs the command hundreds of times)."""
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@dataclass(frozen=True)
class Done:
    """What a command left: exit status and what it printed."""

    code: int
    stdout: str
    stderr: str
    command: str

    def describe(self) -> str:
        return (f"`{self.command}` exited {self.code}\n--- stderr ---\n{self.stderr[-3000:]}"
                f"\n--- stdout ---\n{self.stdout[-1000:]}")


def run_cli(args: Sequence[str | Path], *, cwd: Path | None = None, timeout: float = 240,
            env: dict[str, str] | None = None) -> Done:
    """A command in its own process, as a user runs it."""
    argv = [str(a) for a in args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`{' '.join(argv[3:])}` ran longer than {timeout} s (a hang?)"
                             ) from exc
    return Done(done.returncode, done.stdout, done.stderr, " ".join(argv[3:]))


def sim(*args: str | Path, cwd: Path | None = None, timeout: float = 240) -> Done:
    return run_cli([*SIM, *args], cwd=cwd, timeout=timeout)


def measure(*args: str | Path, cwd: Path | None = None, timeout: float = 240) -> Done:
    return run_cli([*MEASURE, *args], cwd=cwd, timeout=timeout)


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    old = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = old


def run_in_process(program: str, *args: str | Path) -> Done:
    """`sim ...` or `measure ...` run through its entry point in this process: the same code
    path as the console script (argument parsing, error handling, exit status) without the
    second of start-up a subprocess costs, so that many inputs can be tried. An exception that
    escapes the entry point is what a user would see as a traceback: it fails the test."""
    if program == "sim":
        from sim.cli import main
    else:
        from measure.cli import main
    entry: Callable[[], None] = main
    argv = [program, *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with _argv(argv), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            entry()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # the traceback a user would get
        raise AssertionError(f"`{' '.join(argv)}` ended in a traceback: "
                             f"{type(exc).__name__}: {exc}\n--- stderr ---\n"
                             f"{err.getvalue()[-2000:]}") from exc
    return Done(code, out.getvalue(), err.getvalue(), " ".join(argv))


def error_lines(done: Done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def assert_no_traceback(done: Done) -> None:
    assert "Traceback (most recent call last)" not in done.stderr, done.describe()
    assert done.code in (0, 2), f"exit {done.code} (0 or 2 expected)\n{done.describe()}"


LOCATED = re.compile(r"^\S+:\d+:\d+: ")
"""A located problem in a file a user wrote: `file:line:col: path: message`."""


def assert_one_line_naming(done: Done, *names: str | Path) -> str:
    """Exit 2 with exactly one line, `error: ...` or `file:line:col: ...`, that names one of
    `names` (files)."""
    assert done.code == 2, done.describe()
    lines = error_lines(done)
    assert len(lines) == 1, f"{len(lines)} lines on stderr, one expected\n{done.describe()}"
    assert lines[0].startswith("error: ") or LOCATED.match(lines[0]), done.describe()
    assert any(str(n) in lines[0] for n in names), (
        f"the message names none of {[str(n) for n in names]}\n{done.describe()}")
    return lines[0]


# --- mutating parsed documents (YAML and JSON files) ----------------------------------------

Path_ = tuple[int | str, ...]
"""Where a node sits in a parsed document: keys and list indices from the root."""


def node_paths(tree: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every node of a parsed document, the root included, in document order."""
    paths = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            paths += node_paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            paths += node_paths(value, (*prefix, i))
    return paths


def get_at(tree: Any, path: Path_) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def set_at(tree: Any, path: Path_, value: Any) -> Any:
    """`tree` with the node at `path` replaced (the root itself when `path` is empty)."""
    if not path:
        return value
    get_at(tree, path[:-1])[path[-1]] = value
    return tree


def delete_at(tree: Any, path: Path_) -> Any:
    if path:
        del get_at(tree, path[:-1])[path[-1]]
    return tree


def non_finite_paths(tree: Any, skip: tuple[str, ...] = ()) -> list[Path_]:
    """Paths of NaN and infinite numbers, outside top-level keys in `skip`."""
    return [p for p in node_paths(tree)
            if isinstance(get_at(tree, p), float) and not math.isfinite(get_at(tree, p))
            and not (p and p[0] in skip)]


JUNK_SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
"""Values of the wrong type (or right type, wrong value) for any field."""

JUNK_VALUES = st.one_of(
    JUNK_SCALARS,
    st.lists(JUNK_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), JUNK_SCALARS, max_size=3),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
OUT_OF_RANGE = st.sampled_from([0, -1, -1e-9, 0.0, -0.0, 1e308, -1e308, 2**63, 10**30, 1e-320])
UNKNOWN_KEY = "zz_unknown_key"
DEEP = "__DEEP_NESTING__"
"""Placeholder replaced by a deeply nested flow list after the document is written out."""


@st.composite
def mutated_tree(draw: st.DrawFn, tree: Any, max_mutations: int = 3) -> tuple[Any, list[str]]:
    """A copy of a parsed document with 1..max_mutations edits: wrong types, unknown keys,
    out-of-range and non-finite numbers, deleted keys, empty lists, deep nesting. Returns the
    tree and a description of each edit (for the failure message)."""
    import copy

    tree = copy.deepcopy(tree)
    done: list[str] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = node_paths(tree)
        path = draw(st.sampled_from(paths))
        node = get_at(tree, path)
        kind = draw(st.sampled_from(
            ["junk", "non_finite", "out_of_range", "unknown_key", "delete", "empty_list",
             "deep"]))
        if kind == "junk" and path:
            tree = set_at(tree, path, draw(JUNK_VALUES))
        elif kind == "non_finite" and path:
            numbers = [p for p in paths if isinstance(get_at(tree, p), int | float)
                       and not isinstance(get_at(tree, p), bool)]
            path = draw(st.sampled_from(numbers)) if numbers else path
            tree = set_at(tree, path, draw(NON_FINITE))
        elif kind == "out_of_range" and path:
            tree = set_at(tree, path, draw(OUT_OF_RANGE))
        elif kind == "unknown_key" and isinstance(node, dict):
            node[UNKNOWN_KEY] = draw(JUNK_SCALARS)
        elif kind == "delete" and path:
            tree = delete_at(tree, path)
        elif kind == "empty_list":
            lists = [p for p in paths if isinstance(get_at(tree, p), list)]
            path = draw(st.sampled_from(lists)) if lists else path
            tree = set_at(tree, path, [])
        elif kind == "deep" and path:
            tree = set_at(tree, path, DEEP)
        else:
            continue
        done.append(f"{kind} at {'.'.join(map(str, path)) or '(top)'}")
    return tree, done


def deep_nesting(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth
