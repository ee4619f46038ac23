"""The Ultralytics data YAML: read safely (no aliases, bounded depth, each key once), and its class names."""

from __future__ import annotations

from pathlib import Path

import yaml

from imbstat.data.source import read_text
from imbstat.errors import ImbstatError

# Without names the classes are 0..max index seen, so one stray index would size every per-class array
# (10,000,000 took 7.4 GB); an index at or past this needs the names. The same bounds a bare ``nc``.
MAX_UNNAMED_CLASSES = 1 << 16
MAX_CLASS_INDEX = 2**31 - 1  # a names key; label indices past it are unknown classes (exact in float64)
MAX_YAML_DEPTH = 100  # a data YAML nests 3 levels; PyYAML's composer recurses per level


def read_data_yaml(data_yaml: Path) -> dict:
    """The data YAML's mapping; ImbstatError (with line and column) where it is malformed or refused."""
    text = read_text(data_yaml, "an Ultralytics data YAML")
    try:
        doc = yaml.load(text, _DataYamlLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        position = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        if isinstance(e, _Refused):
            detail = f"refused: {e.problem}; expected a plain data YAML{e.note}"
            raise ImbstatError(detail, data_yaml, position) from None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ImbstatError(f"malformed YAML: {problem}", data_yaml, position) from None
    if not isinstance(doc, dict):
        raise ImbstatError("expected a mapping with names and train/val/test", data_yaml)
    return doc


class _Refused(yaml.MarkedYAMLError):
    """A YAML construct a data YAML never needs, refused where it starts."""

    def __init__(self, problem: str, mark: yaml.Mark, note: str = "") -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.note = note


class _DataYamlLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader without aliases, with a bounded depth and each mapping key once.

    An alias shares its anchor's node, so nested aliases ("billion laughs") build a small graph that
    expands exponentially when it is walked (printed, compared); a data YAML never needs one. PyYAML
    composes nodes recursively, so a deep nest would end in RecursionError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"YAML alias '*{event.anchor}'", event.start_mark, " without anchors and aliases")
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # PyYAML keeps the last of a key given twice, silently: `names` twice would drop a class list.
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: SafeLoader's own error names it
            if key in seen:
                raise _Refused(f"key {key!r} given twice in one mapping", key_node.start_mark, " with each key once")
            seen.add(key)
        return super().construct_mapping(node, deep)


def class_names(doc: dict, data_yaml: Path) -> dict[int, str]:
    """``{class index: name}`` from ``names`` (list or mapping) or ``nc``."""
    names, nc = doc.get("names"), doc.get("nc")
    if nc is not None and (not is_int(nc) or not 0 <= nc <= MAX_UNNAMED_CLASSES):
        raise ImbstatError(f"nc is {nc!r}; expected a whole number 0..{MAX_UNNAMED_CLASSES}", data_yaml, "nc")
    if names is None and nc is not None:
        names = [str(k) for k in range(nc)]
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        raise ImbstatError("expected a list of class names or a mapping {index: name}", data_yaml, "names")
    out = {}
    for key, value in names.items():
        # Whole numbers, also as digit strings ("0": cat); not 1.5, True or .inf.
        index = key if is_int(key) else int(key) if isinstance(key, str) and key.strip().isdigit() else None
        if index is None or not 0 <= index <= MAX_CLASS_INDEX:
            detail = f"class index {key!r}; expected whole-number class indices as keys, 0..{MAX_CLASS_INDEX}"
            raise ImbstatError(detail, data_yaml, "names")
        out[index] = str(value)
    if nc is not None and nc != len(out):
        raise ImbstatError(f"nc is {nc} but names has {len(out)} entries; expected them to agree", data_yaml, "nc")
    return out


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
