"""Load a YAML or JSON file into a frozen pydantic model, reporting every mistake as
`file:line:col: dotted.path: message`: scenarios, calibrations and launch schedules alike.

Positions come from walking `yaml.compose` nodes (JSON is YAML too) along each error's `loc`.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import UserError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


class FileError(UserError):
    """A user's mistake in a YAML or JSON file: one formatted line per problem in `lines`; the
    message is the first of them (and how many more), so the CLIs print it as one line."""

    def __init__(self, lines: Sequence[str]) -> None:
        extra = len(lines) - 1
        more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
        super().__init__(f"{lines[0]}{more}")
        self.lines = list(lines)


class ScenarioError(FileError):
    """A mistake in a scenario file."""


def load_yaml_model(
    path: Path, model: type[M], context: dict[str, Any] | None = None, *,
    error: type[FileError] = ScenarioError,
) -> M:
    """Parse and validate `path` as `model`: JSON when its name ends in .json, YAML otherwise.
    Any defect raises `error` with located messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error([f"{path}: cannot read the file ({exc.strerror}); check the path"]) from None
    except UnicodeDecodeError as exc:
        raise error([f"{path}: byte {exc.start} is not UTF-8 text; save the file as UTF-8"]
                    ) from None
    return parse_yaml_model(text, model, source=str(path), context=context, error=error,
                            as_json=path.suffix.lower() == ".json")


def parse_yaml_model(
    text: str, model: type[M], source: str = "<string>", context: dict[str, Any] | None = None,
    *, error: type[FileError] = ScenarioError, as_json: bool = False,
) -> M:
    """Validate YAML (or, with `as_json`, JSON) `text` as `model`; `source` names the text in
    messages. JSON is read by the json module, which keeps every float exactly as written."""
    data = _parse_json(text, source, error) if as_json else _parse_yaml(text, source, error)
    if not isinstance(data, dict):
        kind = "JSON object" if as_json else "YAML mapping"
        raise error([f"{source}:1:1: the file must be a {kind} of settings"])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        try:
            root: yaml.Node | None = yaml.compose(text)
        except (yaml.YAMLError, RecursionError):  # valid JSON YAML cannot read: no positions
            root = None
        errors = exc.errors()
        raise error(
            [format_error(source, root, model, err) for err in errors
             if not _consequence(err, errors)]
        ) from None


def _parse_yaml(text: str, source: str, error: type[FileError]) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise error([f"{where}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise error([f"{source}: invalid YAML: {exc}"]) from None
    except RecursionError:  # the YAML parser recurses once per level of nesting
        raise error([f"{source}: invalid YAML: nested too deeply"]) from None


def _parse_json(text: str, source: str, error: type[FileError]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error([f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
    except RecursionError:
        raise error([f"{source}: invalid JSON: nested too deeply"]) from None


def _consequence(err: Any, errors: Sequence[Any]) -> bool:
    """A list too short only because some of its items failed: the item errors say it all."""
    if err["type"] != "too_short":
        return False
    loc = tuple(err["loc"])
    return any(len(o["loc"]) > len(loc) and tuple(o["loc"][: len(loc)]) == loc for o in errors)


def format_error(source: str, root: yaml.Node | None, model: type[BaseModel], err: Any) -> str:
    """One line for one pydantic error dict: position, dotted path of the YAML keys, message."""
    loc: Loc = tuple(err["loc"])
    if err["type"] == "union_tag_invalid":  # point at the tag's value, not the whole entry
        loc += (str((err.get("ctx") or {}).get("discriminator", "")).strip("'"),)
    node, yaml_loc = locate(root, loc, key_node=err["type"] == "extra_forbidden")
    where = f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else source
    dotted = ".".join(str(p) for p in yaml_loc) or "(top)"
    message = _message(err, model, loc)
    return f"{where}: {dotted}: {message}"


def locate(
    root: yaml.Node | None, loc: Loc, key_node: bool = False
) -> tuple[yaml.Node | None, Loc]:
    """Deepest YAML node along `loc`, and the part of `loc` that names real YAML keys.

    Parts of `loc` that are not in the YAML (a discriminated union's tag, a validator's name)
    are skipped; `key_node` points at the key itself rather than its value (unknown keys).
    """
    node = root
    found: list[int | str] = []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)
                     and k.value == str(part)]
            if not match:
                continue
            key, value = match[0]
            found.append(part)
            node = key if key_node and i == len(loc) - 1 else value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            found.append(part)
            node = node.value[part]
        else:
            continue
    return node, tuple(found)


def _message(err: Any, model: type[BaseModel], loc: Loc) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = fields_at(model, loc[:-1])
        hint = _did_you_mean(str(loc[-1]), allowed)
        return f"unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing; add it"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        tag = str(ctx.get("tag", ""))
        expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        hint = _did_you_mean(tag, expected, "choices")
        what = str(ctx.get("discriminator", "kind")).strip("'")
        return f"unknown {what} {tag!r}{hint}"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _did_you_mean(word: str, candidates: Sequence[str], what: str = "keys") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if candidates:
        return f"; {what}: {', '.join(sorted(candidates))}"
    return ""


def fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found by following `loc` through annotations (for did-you-mean)."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    cls = _as_model(current)
    return list(cls.model_fields) if cls else []


def _step(annotation: Any, part: int | str) -> Any:
    options = _union_members(annotation)
    for option in options:
        origin = typing.get_origin(option)
        if isinstance(part, int) and origin in (list, tuple, Sequence):
            return typing.get_args(option)[0]
        cls = _as_model(option)
        if cls is not None and isinstance(part, str) and part in cls.model_fields:
            return cls.model_fields[part].annotation
        if origin is dict and isinstance(part, str):
            return typing.get_args(option)[1]
    # A discriminated union's tag: pick the member whose literal tag equals `part`.
    for option in options:
        cls = _as_model(option)
        if cls is None:
            continue
        for field in cls.model_fields.values():
            if typing.get_origin(field.annotation) is typing.Literal and part in typing.get_args(
                field.annotation
            ):
                return cls
    return None


def _union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members: list[Any] = []
        for arg in typing.get_args(annotation):
            members.extend(_union_members(arg))
        return members
    return [annotation]


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
