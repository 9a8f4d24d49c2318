"""YAML with line numbers: a safe loader whose mappings and sequences know their lines.

The catalog checks name the line of every problem, so each loaded mapping and list
remembers where it and each of its keys or items began. Booleans follow YAML 1.2 (only
true/false) and dates stay text, so `en: No` is a string that fails validation clearly.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Mapping(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int
    lines: dict


class _Sequence(list):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader with line numbers, YAML 1.2 booleans (only true/false) and dates as text.

    YAML 1.1 reads an unquoted `yes`, `no` or `on` as a boolean, so `en: No` would silently
    become False; here such values stay strings and fail validation with a clear message.
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Any, int]] = []


_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode):
    """Build a _Mapping with lines, noting keys written twice (merged `<<` keys excepted)."""
    data = _Mapping()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    own_keys = {id(key_node) for key_node, _ in node.value}
    loader.flatten_mapping(node)  # resolves `<<` merge keys; own keys may then override
    own_seen: set = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found unhashable key",
                key_node.start_mark,
            )
        line = key_node.start_mark.line + 1
        if id(key_node) in own_keys:
            if key in own_seen:
                loader.duplicate_keys.append((key, line))
            own_seen.add(key)
        data[key] = loader.construct_object(value_node)
        data.lines[key] = line


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode):
    """Build a _Sequence with the line of each item."""
    data = _Sequence()
    data.line = node.start_mark.line + 1
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item) for item in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def parse(text: str) -> tuple[Any, list[tuple[Any, int]]]:
    """The document in `text` and the keys written twice in a mapping; raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicate_keys
    finally:
        loader.dispose()


def line_of(container: Any, key: Any = None, default: int | None = None) -> int | None:
    """The line of `key` inside a loaded mapping or sequence, else of the container itself."""
    lines = getattr(container, "lines", None)
    if key is not None and lines is not None:
        if isinstance(lines, dict) and key in lines:
            return lines[key]
        if isinstance(lines, list) and isinstance(key, int) and key < len(lines):
            return lines[key]
    return getattr(container, "line", default)


def kind_of(value: Any) -> str:
    """How a YAML writer would call the type of a value."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
