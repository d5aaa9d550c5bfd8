"""The sweep grid: ``--grid 'fairness.lambda=[0,0.5,1]'`` options, their product, and the configs.

A key is a dotted path into :class:`~ethos.config.RunConfig`. One whose first part is not a
top-level section (data, model, task, train, qa, seed, ...) is taken relative to ``train``, so
``fairness.lambda`` means ``train.fairness.lambda`` and ``learning_rate`` means
``train.learning_rate``. Values are a YAML (or JSON) list; ``inf`` and ``.inf`` read as float
infinity, so ``privacy.epsilon=[1,8,inf]`` includes the non-private run.

The grid only varies values: a key below a section the base config leaves unset
(``privacy.epsilon`` with no ``train.privacy``) is refused with a hint to declare the section.
Every point is validated as a whole config before anything trains, so a bad value fails at once
with the config's own message and the point that holds it.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ethos.config import RunConfig, resolve_relative_paths, validate_config
from ethos.errors import ConfigError

DEFAULT_MAX_POINTS = 64
TOP_LEVEL = tuple(RunConfig.model_fields)
FIXED_KEYS = {
    "output_dir": "a sweep writes every run under its --out folder (OUT/runs)",
    "policy": "every point of a sweep is judged by the same policy (use --policy)",
}
_SEGMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_INF = re.compile(r"^[-+]?(?:inf|infinity)$", re.IGNORECASE)
_EXPONENT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")  # JSON's 1e-4


class GridError(ConfigError):
    """A ``--grid`` option that cannot be read, or a grid that cannot be swept."""


class _GridLoader(yaml.SafeLoader):
    """YAML, plus ``inf``/``-inf``/``infinity`` and JSON's ``1e-4`` read as floats (YAML 1.1
    itself only knows ``.inf`` and wants a dot in ``1.0e-4``)."""


_GridLoader.add_implicit_resolver("tag:yaml.org,2002:float", _INF, list("iI+-"))
_GridLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("+-.0123456789"))


@dataclass(frozen=True)
class Axis:
    """One varied key: ``key`` is the full path (``train.fairness.lambda``), ``name`` the short
    form shown on the page (``fairness.lambda``)."""

    key: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return self.key.removeprefix("train.")

    def __repr__(self) -> str:
        return f"{self.name}=[{', '.join(format_value(v) for v in self.values)}]"


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep; its points are their product, first axis slowest."""

    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def combinations(self) -> list[dict[str, Any]]:
        """Every point as ``{key: value}``, in the order they are trained."""
        keys = [a.key for a in self.axes]
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(a.values for a in self.axes))
        ]

    def __repr__(self) -> str:
        axes = " x ".join(repr(a) for a in self.axes)
        return f"Grid({self.size} point{'s' * (self.size != 1)}: {axes})"


@dataclass(frozen=True)
class GridPoint:
    """One validated point: its position, the values it sets and the whole config it trains."""

    index: int
    values: dict[str, Any]
    config: RunConfig

    @property
    def label(self) -> str:
        return label_of(self.values)

    def __repr__(self) -> str:
        return f"GridPoint(#{self.index + 1}: {self.label})"


def format_value(value: Any) -> str:
    """A grid value as a short, readable string (``inf`` as ∞)."""
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), separators=(",", ":"))


def label_of(values: dict[str, Any]) -> str:
    """``fairness.lambda=0.5, privacy.epsilon=∞`` for a point's values."""
    return ", ".join(f"{k.removeprefix('train.')}={format_value(v)}" for k, v in values.items())


def jsonable(value: Any) -> Any:
    """A grid value for JSON, which has no infinity: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'inf', '-inf', 'nan'
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def parse_grid(
    options: list[str] | tuple[str, ...], *, max_points: int = DEFAULT_MAX_POINTS
) -> Grid:
    """Read ``KEY=[V1,V2,...]`` options into a grid, refusing anything ambiguous or too large."""
    if not options:
        raise GridError(
            "a sweep needs at least one --grid KEY=[VALUES]",
            hint="e.g. --grid 'learning_rate=[1e-4,3e-4]' --grid 'fairness.lambda=[0,1]'",
        )
    axes: list[Axis] = []
    seen: dict[str, str] = {}
    for option in options:
        axis = parse_axis(option, max_points=max_points)
        if axis.key in seen:
            raise GridError(
                f"--grid '{option}' varies {axis.key} again (already set by '{seen[axis.key]}')",
                hint="give each key once, with all its values in one list",
            )
        seen[axis.key] = option
        axes.append(axis)
    grid = Grid(tuple(axes))
    if grid.size > max_points:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise GridError(
            f"the grid has {grid.size} points ({sizes}), more than --max-points {max_points}",
            hint="shorten the value lists, or raise --max-points if you mean to train them all",
        )
    return grid


def parse_axis(option: str, *, max_points: int = DEFAULT_MAX_POINTS) -> Axis:
    """One ``KEY=[VALUES]`` option (a list longer than ``max_points`` is refused unread)."""
    key_text, sep, value_text = option.partition("=")
    if not sep or not key_text.strip() or not value_text.strip():
        raise GridError(
            f"--grid '{_short(option)}' is not KEY=[VALUES]",
            hint="e.g. --grid 'fairness.lambda=[0,0.5,1]' (quote it for the shell)",
        )
    key = resolve_key(key_text.strip())
    longest = 1000 + 256 * max_points  # far above any real list; refuses before YAML parses it
    if len(value_text) > longest:
        raise GridError(
            f"--grid {key_text.strip()}: the value list is {len(value_text)} characters long, "
            f"more than {max_points} values (--max-points) would need",
            hint="shorten the list, or raise --max-points if you mean to train them all",
        )
    try:
        values = yaml.load(value_text, Loader=_GridLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise GridError(
            f"--grid {key_text.strip()}: the values are not a YAML/JSON list ({problem})",
            hint="write them as [1, 2, 3]; quote strings that contain commas or brackets",
        ) from None
    if not isinstance(values, list):
        raise GridError(
            f"--grid {key_text.strip()}: the values must be a list, got "
            f"{_short(value_text.strip())}",
            hint=f"a single value is a list of one: {key_text.strip()}=[{_short(value_text)}]",
        )
    if not values:
        raise GridError(
            f"--grid {key_text.strip()}: the value list is empty",
            hint="give at least one value, or drop the --grid option",
        )
    if len(values) > max_points:
        raise GridError(
            f"--grid {key_text.strip()}: {len(values)} values, more than --max-points {max_points}",
            hint="shorten the list, or raise --max-points if you mean to train them all",
        )
    shown: set[str] = set()
    for value in values:
        _check_value(key, value)
        canonical = json.dumps(value, sort_keys=True)  # "inf" (text) differs from inf
        if canonical in shown:
            raise GridError(
                f"--grid {key_text.strip()}: the value {format_value(value)} appears twice",
                hint="each value once: repeated points would train the same run again",
            )
        shown.add(canonical)
    return Axis(key, tuple(values))


def _check_value(key: str, value: Any) -> None:
    """Scalars, or a flat list/mapping of scalars (``data.sensitive=[[race],[race,sex]]``)."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if isinstance(value, list | dict) and all(isinstance(v, scalar) for v in inner):
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise GridError(f"--grid {key}: mapping keys must be names, got {value!r}"[:200])
        return
    raise GridError(
        f"--grid {key}: the value {_short(repr(value))} is nested too deeply",
        hint="a grid value is a number, a string, or a flat list or mapping of them",
    )


def resolve_key(text: str) -> str:
    """The full dotted path of a grid key (``fairness.lambda_`` -> ``train.fairness.lambda``)."""
    parts = text.split(".")
    implicit = parts[0] not in TOP_LEVEL
    for part in parts:
        if not _SEGMENT.match(part):
            raise GridError(
                f"--grid key '{_short(text)}' is not a dotted config path",
                hint="names of letters, digits and _, joined by dots, e.g. train.learning_rate",
            )
    if implicit:
        parts = ["train", *parts]
    if parts[0] in FIXED_KEYS and len(parts) == 1:
        raise GridError(f"--grid cannot vary {parts[0]}: {FIXED_KEYS[parts[0]]}")
    model: type[BaseModel] | None = RunConfig
    resolved: list[str] = []
    for depth, part in enumerate(parts):
        where = ".".join(resolved) or "the run config"
        if model is None:
            raise GridError(
                f"--grid key '{text}': {where} is a value, not a section with keys",
                hint=f"vary {where} as a whole",
            )
        name = _field_name(model, part)
        if name is None:
            allowed = sorted(_dump_name(model, f) for f in model.model_fields)
            close = difflib.get_close_matches(part, allowed, n=1)
            guess = f"did you mean '{close[0]}'? " if close else ""
            below_train = " (a key that is not a top-level section is read below train)"
            raise GridError(
                f"--grid key '{text}': {where} has no key '{part}'"
                + (below_train if implicit and depth == 1 else ""),
                hint=f"{guess}{where} has: {', '.join(allowed)}",
            )
        resolved.append(_dump_name(model, name))
        model = _section_model(model, name)
    return ".".join(resolved)


def _field_name(model: type[BaseModel], part: str) -> str | None:
    if part in model.model_fields:
        return part
    return next((n for n, f in model.model_fields.items() if f.alias == part), None)


def _dump_name(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _section_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    annotation = model.model_fields[name].annotation
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def expand(
    base: RunConfig,
    grid: Grid,
    *,
    source: str | Path = "the base config",
    base_dir: Path | None = None,
) -> list[GridPoint]:
    """Every point as a validated RunConfig; the first invalid point stops the sweep here.

    ``base_dir`` resolves relative file paths in the values (``data.source``) as
    :func:`~ethos.config.load_config` resolves the file's own.
    """
    # Only what the config sets: a bundled data set fills what is left out (ethos.data.build).
    raw_base = base.model_dump(mode="python", by_alias=True, exclude_unset=True)
    for axis in grid.axes:
        _check_section_declared(base, axis.key)
    points: list[GridPoint] = []
    total = grid.size
    for index, values in enumerate(grid.combinations()):
        raw = _deep_copy(raw_base)
        for key, value in values.items():
            _assign(raw, key, value)
        try:
            config = validate_config(raw, Path(str(source)))
        except ConfigError as exc:
            problems = exc.message.partition("\n")[2] or exc.message
            raise GridError(
                f"grid point {index + 1}/{total} ({label_of(values)}) makes {source} invalid:\n"
                f"{problems}",
                hint="change or drop that value in --grid",
            ) from None
        if base_dir is not None:
            config = resolve_relative_paths(config, base_dir)
        points.append(GridPoint(index, values, config))
    return points


def _check_section_declared(base: RunConfig, key: str) -> None:
    parts = key.split(".")
    node: Any = base
    for depth, part in enumerate(parts[:-1]):
        name = _field_name(type(node), part)
        node = getattr(node, name) if name is not None else None
        if node is None:
            section = ".".join(parts[: depth + 1])
            raise GridError(
                f"--grid {key.removeprefix('train.')}: the base config does not set {section}",
                hint=f"declare {section} in the config first; the grid only varies its values",
            )


def _assign(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})  # a section left to its defaults (checked declared)
    node[parts[-1]] = _deep_copy(value)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
