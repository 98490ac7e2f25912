"""Problems in a fleet file, each with the line it comes from.

The YAML is read with a loader that records the line of every key and reads numbers as
exact decimals; a pydantic error or a broken cross-reference becomes a :class:`Problem` at
that line, and all problems of a file are raised together as one :class:`FleetFileError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from zonnewijk_wire import ID_PATTERN

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a fleet file, where it is and why."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def field(self) -> str:
        return format_loc(self.loc)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field or '(file)'}: {self.message}"


class FleetFileError(ValueError):
    """The fleet file is invalid; :attr:`problems` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {len(self.problems)} problem(s)"]
        lines += [
            f"  {source}:{p.line or '?'}: {p.field or '(file)'}: {p.message}" for p in self.problems
        ]
        super().__init__("\n".join(lines))


def format_loc(loc: Loc) -> str:
    """``('members', 3, 'email')`` → ``members[3].email``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# libyaml's parser when PyYAML was built with it (about 10x faster on a 10,000-member file).
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """Safe YAML loader that reads numbers with a fraction as exact Decimals."""


def _construct_decimal(loader: Any, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node))
    plain = text.replace("_", "").lower()
    if plain in (".nan", ".inf", "+.inf", "-.inf"):
        return float(loader.construct_yaml_float(node))
    return Decimal(plain)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _walk_marks(node: yaml.Node, path: Loc, marks: dict[Loc, int], problems: list[Problem]) -> None:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem((*path, key), f"duplicate key (first on line {seen[key]})", line)
                )
            seen[key] = line
            marks[(*path, key)] = line
            _walk_marks_value(value_node, (*path, key), marks, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_marks(item, (*path, index), marks, problems)


def _walk_marks_value(
    node: yaml.Node, path: Loc, marks: dict[Loc, int], problems: list[Problem]
) -> None:
    # A mapping or sequence value keeps its key's line; children get their own.
    key_line = marks[path]
    _walk_marks(node, path, marks, problems)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        marks[path] = key_line


def parse_yaml_with_lines(text: str, source: str = "<fleet>") -> tuple[Any, dict[Loc, int]]:
    """Parse YAML, returning the data and a map from each key/item path to its line (1-based).

    Raises
    ------
    FleetFileError
        On a YAML syntax error or a duplicate key, with the line.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise FleetFileError(
                source, [Problem((), f"YAML syntax: {exc.problem or exc}", line)]
            ) from None
        except yaml.YAMLError as exc:
            raise FleetFileError(source, [Problem((), f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    marks: dict[Loc, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk_marks(node, (), marks, problems)
    if problems:
        raise FleetFileError(source, problems)
    return data, marks


def line_of(loc: Sequence[str | int], marks: Mapping[Loc, int]) -> int | None:
    """The line of the deepest part of ``loc`` present in the file."""
    parts = tuple(loc)
    for end in range(len(parts), -1, -1):
        if parts[:end] in marks:
            return marks[parts[:end]]
    return None


def pydantic_problems(exc: ValidationError, marks: Mapping[Loc, int]) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        # Keep only the path parts that are real keys or indices (drop union/function tags).
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not _is_tag(p, err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/fleet-file.md)"
        elif (
            err["type"] == "string_pattern_mismatch"
            and (err.get("ctx") or {}).get("pattern") == ID_PATTERN
        ):
            message = (
                f"{err['input']!r} is not a valid id: use letters, digits, '_', '.', '-', "
                "start with a letter or digit, at most 64 characters"
            )
        problems.append(Problem(loc, message, line_of(loc, marks)))
    return problems


def _is_tag(part: str, loc: Sequence[Any]) -> bool:
    return "[" in part or part.startswith(("function-", "lax-", "json-or-python"))
