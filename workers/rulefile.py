"""Reading a YAML rules file so that every problem names its file and line.

A landlord edits these files by hand; a typo must stop start-up with a message that says
exactly where it is (``triage.yaml:42: bad regular expression ...``), not a traceback from
deep inside the worker. Scalars keep the line they came from for that purpose.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import RulesError


class Located(str):
    """A string from a rules file that remembers its line."""

    line: int

    def __new__(cls, value: str, line: int) -> Located:
        item = super().__new__(cls, value)
        item.line = line
        return item


class LocatedDict(dict[str, Any]):
    """A mapping from a rules file that remembers the line it starts on."""

    line: int


class LocatedList(list[Any]):
    """A list from a rules file that remembers the line it starts on."""

    line: int


def rules_path(name: str, override_dir: Path | None) -> Path:
    """The file to read: the override when one exists, else the shipped default."""
    if override_dir is not None and (override_dir / name).is_file():
        return override_dir / name
    return Path(str(resources.files("workers.rules").joinpath(name)))


def load_rule_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RulesError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if node is None:
        raise RulesError(f"{path}:1: the file is empty")
    return _build(node, path)


def _build(node: yaml.Node, path: Path) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = LocatedDict()
        result.line = line
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                raise RulesError(f"{path}:{key_node.start_mark.line + 1}: '{key}' appears twice")
            result[key] = _build(value_node, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = LocatedList(_build(item, path) for item in node.value)
        items.line = line
        return items
    value = node.value
    plain = isinstance(node, yaml.ScalarNode) and node.style is None
    if plain and re.fullmatch(r"-?\d+", value):
        return int(value)
    if plain and value in ("true", "false"):
        return value == "true"
    return Located(value, line)


def fail(path: Path, item: object, problem: str) -> RulesError:
    line = getattr(item, "line", None)
    return RulesError(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")


def compile_pattern(path: Path, pattern: object) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise fail(path, pattern, f"expected a regular expression, found {type(pattern).__name__}")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise fail(path, pattern, f"bad regular expression {pattern!r}: {exc}") from None
