"""Read YAML files into plain Python values that remember their line numbers.

Owns: finding the files (a path or a directory of ``*.yaml``/``*.yml``), parsing
them safely (no arbitrary tags), splitting ``kind: List``, and reporting YAML
syntax errors as ``FILE:LINE: message``.  Knows nothing about Kubernetes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import yaml


class LineMap(dict[Any, Any]):
    """A YAML mapping; ``line`` is where it starts, ``key_lines`` where each key is."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence; ``item_lines[i]`` is where item ``i`` is."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _BadKey(yaml.MarkedYAMLError):
    pass


# libyaml parses ~10x faster than PyYAML's pure-Python parser (10,000 Ingresses
# load in seconds, not minutes) and gives the same marks; both are "safe" loaders.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SPECIAL_KEYS = frozenset((_MERGE, "tag:yaml.org,2002:value"))
_Scalar = yaml.ScalarNode
_BUILDING = object()  # memo mark of a collection under construction: an alias to it recurses


class _LineLoader(_SafeBase):  # type: ignore[valid-type, misc]
    """A safe loader whose mappings and sequences carry line numbers.

    Documents are converted by `_value`, a direct walk over the node tree: plain
    strings, mappings and sequences (nearly every node of a Kubernetes manifest)
    skip PyYAML's generic `construct_object` bookkeeping, which was two thirds of
    the load time at 10,000 Ingresses.  Every other node (numbers, booleans, null,
    other tags) still goes through PyYAML's safe constructors.
    """

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # The implicit tag of a plain scalar depends on its text alone (this loader has
        # no path resolvers), and manifests repeat the same texts over and over.
        if kind is _Scalar and implicit[0]:
            cache: dict[str, str] = self.__dict__.setdefault("_plain_tags", {})
            tag = cache.get(value)
            if tag is None:
                tag = cache[value] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return _value(self, node, {})
        finally:
            self.constructed_objects.clear()
            self.recursive_objects.clear()


def _value(loader: _LineLoader, node: yaml.Node, memo: dict[int, Any]) -> Any:
    kind = node.__class__
    tag = node.tag
    if kind is yaml.ScalarNode:
        return node.value if tag == _STR else loader.construct_object(node, deep=True)
    if tag != _MAP and tag != _SEQ:
        return loader.construct_object(node, deep=True)  # PyYAML's rules (or its error)
    # An alias is the same node object again: build it once (shared, as PyYAML does, so
    # nested aliases cannot blow up), and refuse one that contains itself.
    built = memo.get(id(node))
    if built is _BUILDING:
        raise yaml.constructor.ConstructorError(
            None, None, "found unconstructable recursive node", node.start_mark
        )
    if built is not None:
        return built
    memo[id(node)] = _BUILDING
    if isinstance(node, yaml.MappingNode):
        built = _construct_mapping(loader, node, memo)
    else:
        built = _construct_sequence(loader, cast(yaml.SequenceNode, node), memo)
    memo[id(node)] = built
    return built


def _construct_mapping(
    loader: _LineLoader, node: yaml.MappingNode, memo: dict[int, Any]
) -> LineMap:
    own = len(node.value)
    if any(key_node.tag in _SPECIAL_KEYS for key_node, _ in node.value):
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
        loader.flatten_mapping(node)  # `<<` merges, `=` keys become strings
    merged = len(node.value) - own  # flatten_mapping puts the merged (`<<`) pairs first
    mapping = LineMap(node.start_mark.line + 1)
    key_lines = mapping.key_lines
    if not merged:  # the usual case, kept lean: it is most of the work of a load
        for key_node, value_node in node.value:
            if key_node.__class__ is _Scalar and key_node.tag == _STR:
                key = key_node.value
            else:
                key = _key(loader, key_node, memo)
            if key in mapping:
                # kubectl refuses duplicate keys; keeping the last one would hide mistakes.
                raise _BadKey(None, None, f"duplicate key {key!r} in mapping", key_node.start_mark)
            if value_node.__class__ is _Scalar and value_node.tag == _STR:
                mapping[key] = value_node.value
            else:
                mapping[key] = _value(loader, value_node, memo)
            key_lines[key] = key_node.start_mark.line + 1
        return mapping
    own_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = _key(loader, key_node, memo)
        if index < merged:
            if key in mapping:
                continue  # YAML merge: the first mapping merged wins
        elif key in own_keys:
            # Keys merged in with `<<` may be overridden: that is what merging is for.
            raise _BadKey(None, None, f"duplicate key {key!r} in mapping", key_node.start_mark)
        else:
            own_keys.add(key)
        mapping[key] = _value(loader, value_node, memo)
        key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _key(loader: _LineLoader, node: yaml.Node, memo: dict[int, Any]) -> Any:
    key = _value(loader, node, memo)
    if not isinstance(key, Hashable):
        raise _BadKey(None, None, "a mapping key must be a scalar", node.start_mark)
    return key


def _construct_sequence(
    loader: _LineLoader, node: yaml.SequenceNode, memo: dict[int, Any]
) -> LineList:
    sequence = LineList(node.start_mark.line + 1)
    for child in node.value:
        sequence.append(_value(loader, child, memo))
        sequence.item_lines.append(child.start_mark.line + 1)
    return sequence


# Kubernetes timestamps stay strings: the API server parses them, not YAML.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Document:
    """One top-level object: a mapping from a file, with where it came from."""

    path: str
    value: Any
    line: int


class YamlError(Exception):
    """A file could not be read or parsed; ``problems`` are ``FILE:LINE: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files named, plus the ``*.yaml``/``*.yml`` files of directories named, in order."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith((".yaml", ".yml")))
            files.extend(os.path.join(path, n) for n in names)
        else:
            files.append(path)
    return files


def read_documents(files: Sequence[str]) -> tuple[list[Document], str]:
    """Parse every file; return the documents and a digest of all the bytes read.

    Raises `YamlError` naming every unreadable or unparsable file (each file's
    first syntax error, since YAML cannot resynchronise after one).
    """
    problems: list[str] = []
    documents: list[Document] = []
    digest = hashlib.sha256()
    for path in files:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            problems.append(f"{path}:0: cannot read: {exc.strerror or exc}")
            continue
        digest.update(path.encode() + b"\0" + raw + b"\0")
        try:
            documents.extend(_documents_of(path, raw))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            problems.append(f"{path}:{line}: invalid YAML: {exc.problem or exc.context}")
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{path}:0: invalid YAML: {exc}")
    if problems:
        raise YamlError(problems)
    return documents, digest.hexdigest()


def _documents_of(path: str, raw: bytes) -> Iterator[Document]:
    for value in yaml.load_all(raw.decode("utf-8"), Loader=_LineLoader):  # a SafeLoader subclass
        if value is None:
            continue
        line = value.line if isinstance(value, (LineMap, LineList)) else 1
        if isinstance(value, LineMap) and value.get("kind") == "List":
            items = value.get("items") or LineList(line)
            for index, item in enumerate(items):
                item_line = items.line_of(index) if isinstance(items, LineList) else line
                yield Document(path, item, item_line)
        else:
            yield Document(path, value, line)
