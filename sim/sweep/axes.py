"""Sweep axes: dotted paths into a scenario and the values each takes. Every point of their cross
product is the scenario with those values set, validated like the scenario file itself.

A path walks the scenario as its YAML reads: mapping keys, list indices, and (in a list of
policies or node groups) an entry's `label` or `name`, e.g. `policies.batching.window_s`.
"""

from __future__ import annotations

import copy
import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.files import locate
from sim.scenario import BASE_DIR, Scenario

Axes = dict[str, tuple[Any, ...]]
"""Axis path -> its values, in the order the axes were given (YAML first, then --axis)."""
KeyPath = tuple[str | int, ...]
"""An axis path resolved to the concrete keys and indices of the scenario's dict."""


class AxisError(ValueError):
    """An axis that names nothing in the scenario, or a value the scenario does not accept.
    The message is one line; the caller says where `axis` (when one is to blame) came from."""

    def __init__(self, message: str, axis: str | None = None) -> None:
        super().__init__(message)
        self.axis = axis


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the values of every axis and the scenario they give."""

    index: int
    values: tuple[tuple[str, Any], ...]
    """(axis path, value) in axis order."""
    scenario: Scenario


def parse_axis(spec: str) -> tuple[str, tuple[Any, ...]]:
    """`PATH=V1,V2,...` (each value read as YAML) or `PATH=[...]` (one YAML list)."""
    path, sep, raw = spec.partition("=")
    path, raw = path.strip(), raw.strip()
    if not sep or not path or not raw:
        raise AxisError(f"--axis {spec!r} is not PATH=V1,V2,...; for example "
                        "--axis workload.rate_per_s=1,2,4")
    try:
        if raw.startswith("["):
            values = yaml.safe_load(raw)
        else:
            values = [yaml.safe_load(v.strip()) for v in raw.split(",")]
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AxisError(f"--axis {path}: values {raw!r} are not valid YAML ({problem}); "
                        "write them as V1,V2,... or as a YAML list [V1, V2]") from None
    if not isinstance(values, list) or not values:
        raise AxisError(f"--axis {path}: give at least one value, e.g. {path}=1,2,4")
    return path, tuple(values)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:  # an abbreviation: `rate` for `rate_per_s`
        close = [c for c in choices if c.startswith(word)][:1]
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; it has: {', '.join(choices)}" if choices else ""


def _entry_name(entry: Any) -> str | None:
    """What a list entry is called in a path: its label, else its name (policies, node groups)."""
    if not isinstance(entry, Mapping):
        return None
    for key in ("label", "name"):
        if isinstance(entry.get(key), str) and entry[key]:
            return str(entry[key])
    return None


def resolve(data: Mapping[str, Any], path: str) -> KeyPath:
    """The concrete keys of `path` in a scenario dumped with every default (so every settable
    field is present). Raises AxisError with a did-you-mean when a step names nothing."""
    parts = path.split(".")
    if parts[0] == "sweep":
        raise AxisError("the sweep cannot sweep its own axes", path)
    current: Any = data
    found: list[str | int] = []
    for part in parts:
        where = ".".join(str(p) for p in found) or "the scenario"
        if isinstance(current, Mapping):
            if part not in current:
                raise AxisError(f"{where} has no key {part!r}"
                                f"{_did_you_mean(part, [str(k) for k in current])}", path)
            found.append(part)
            current = current[part]
        elif isinstance(current, list):
            if part.isdigit():
                index = int(part)
                if index >= len(current):
                    raise AxisError(f"{where} has {len(current)} entries "
                                    f"(0..{len(current) - 1}); {index} is past the end", path)
            else:
                names = [_entry_name(e) for e in current]
                if names.count(part) != 1:
                    known = [n for n in names if n is not None]
                    why = "names more than one entry" if part in names else "names no entry"
                    hint = _did_you_mean(part, known) if part not in names else ""
                    if not hint.startswith("; did"):
                        hint = f"; use one of {', '.join(known)} or an index 0..{len(current) - 1}"
                    raise AxisError(f"{part!r} {why} of {where}{hint}", path)
                index = names.index(part)
            found.append(index)
            current = current[index]
        else:
            raise AxisError(f"{where} is a value ({current!r}), not a mapping or a list; "
                            f"end the path at {where}", path)
    return tuple(found)


def assign(data: dict[str, Any], keys: KeyPath, value: Any) -> None:
    """Set the value at `keys` in place."""
    target: Any = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = copy.deepcopy(value)


def points(scenario: Scenario, axes: Mapping[str, Sequence[Any]], base_dir: Path
           ) -> list[Point]:
    """Every point of the cross product of `axes` (the first axis varies slowest), each a
    validated scenario without sweep axes. Relative paths among the values (calibrations,
    traces) resolve against `base_dir`, as in the scenario file."""
    data = scenario.model_dump(mode="json")
    data["sweep"] = {}
    keys = {path: resolve(data, path) for path in axes}
    names = list(axes)
    out = []
    for index, combo in enumerate(itertools.product(*(axes[n] for n in names))):
        point = copy.deepcopy(data)
        for name, value in zip(names, combo, strict=True):
            assign(point, keys[name], value)
        values = tuple(zip(names, combo, strict=True))
        try:
            valid = Scenario.model_validate(point, context={BASE_DIR: base_dir})
        except ValidationError as exc:
            shown = ", ".join(f"{n}={v!r}" for n, v in values)
            loc, message = _first_problem(point, exc)
            blame = next((n for n, k in keys.items() if loc[:len(k)] == k), None)
            where = ".".join(str(p) for p in loc) or "(top)"
            raise AxisError(f"the point {shown} gives an invalid scenario: {where}: "
                            f"{message}; change the axis values", blame) from None
        out.append(Point(index, values, valid))
    return out


def _first_problem(point: dict[str, Any], exc: ValidationError) -> tuple[KeyPath, str]:
    """Where the first error is, as the YAML would spell it (a discriminated union's tag, which
    is not a key, left out), and its message."""
    err = exc.errors()[0]
    root = yaml.compose(yaml.safe_dump(point, sort_keys=False))
    _, loc = locate(root, tuple(err["loc"]))
    return loc, str(err["msg"]).removeprefix("Value error, ")
