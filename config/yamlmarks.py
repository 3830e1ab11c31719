"""Read YAML and remember the line where every key, item and value starts.

PyYAML's ``safe_load`` throws the node marks away; validation errors then cannot say where
in the file a bad field is. Here the document is composed into nodes first, constructed
with the safe constructor, and the node tree is walked once to record the start line of
each mapping key and sequence item, keyed by its path (``('fit', 3, 'points')``).
Mapping keys are stored as strings (``engagement: {4: 40}`` gives ``('model',
'engagement', '4')``), sequence items by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from config.errors import ConfigError, FieldPath, Problem, duplicate_key, format_path


@dataclass
class Marks:
    """1-based start lines by path. The root has line 1."""

    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_for(self, path: FieldPath) -> int | None:
        """The line of ``path``, or of its nearest parent that has one."""
        found = self.lines.get(())
        current: FieldPath = ()
        for part in path:
            step = self._step(current, part)
            if step is None:
                break
            current = step
            found = self.lines[current]
        return found

    def resolve(self, path: FieldPath) -> FieldPath | None:
        """``path`` as stored (an integer key may be stored as a string), or None."""
        current: FieldPath = ()
        for part in path:
            step = self._step(current, part)
            if step is None:
                return None
            current = step
        return current

    def _step(self, current: FieldPath, part: str | int) -> FieldPath | None:
        for candidate in ((*current, part), (*current, str(part))):
            if candidate in self.lines:
                return candidate
        return None

    def __contains__(self, path: FieldPath) -> bool:
        return self.resolve(path) is not None


@dataclass
class Document:
    """Constructed data, its marks, and problems found while reading (duplicate keys)."""

    data: Any
    marks: Marks
    problems: list[Problem]


def read_yaml(text: str, name: str) -> Document:
    """Parse ``text`` (named ``name`` in messages). A syntax error raises ConfigError with
    the line PyYAML reports."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, Marks({(): 1}), [])
        walker = _Walker(name)
        walker.walk(node, ())
        data = loader.construct_document(node)
        return Document(data, Marks(walker.lines), walker.problems)
    except yaml.YAMLError as err:
        raise ConfigError([syntax_problem(err, name)]) from None
    finally:
        loader.dispose()


def syntax_problem(err: yaml.YAMLError, name: str) -> Problem:
    """``file:line: <what the parser expected>`` from a PyYAML exception."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        parts = [p for p in (err.context, err.problem) if p]
        message = "YAML syntax error: " + (", ".join(parts) or str(err))
        if mark is not None:
            message += f" (column {mark.column + 1})"
        return Problem(name, None if mark is None else mark.line + 1, "", message)
    return Problem(name, None, "", f"YAML syntax error: {err}")


MERGE_TAG = "tag:yaml.org,2002:merge"


class _Walker:
    """Records lines from the composed node tree. It runs before construction, which
    rewrites merge keys (``<<: *anchor``) in place."""

    def __init__(self, name: str) -> None:
        self.constructor = SafeConstructor()
        self.name = name
        self.lines: dict[FieldPath, int] = {(): 1}
        self.problems: list[Problem] = []

    def walk(self, node: Node, path: FieldPath) -> None:
        if isinstance(node, MappingNode):
            self._mapping(node, path)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                self.walk(item, (*path, index))

    def _mapping(self, node: MappingNode, path: FieldPath) -> None:
        seen: dict[str, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged.append(value_node)
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                field = format_path((*path, key))
                self.problems.append(Problem(self.name, line, field, duplicate_key(seen[key])))
                continue
            seen[key] = line
            self.lines[(*path, key)] = line
            self.walk(value_node, (*path, key))
        # Keys merged from an anchor point at the anchor's lines, unless given explicitly.
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    self._merge(source, path, seen)

    def _merge(self, source: MappingNode, path: FieldPath, seen: dict[str, int]) -> None:
        for key_node, value_node in source.value:
            key = self._key(key_node)
            if key_node.tag == MERGE_TAG or key in seen:
                continue
            seen[key] = key_node.start_mark.line + 1
            self.lines[(*path, key)] = seen[key]
            self.walk(value_node, (*path, key))

    def _key(self, node: Node) -> str:
        if isinstance(node, ScalarNode):
            return str(self.constructor.construct_object(node))
        return f"<{node.tag} key>"
