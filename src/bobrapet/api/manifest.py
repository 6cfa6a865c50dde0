"""Loading manifests: files, directories, multi-document YAML and stdin.

Every loaded object remembers where it came from (file, document index, line)
and can map a field path such as ``spec.steps[2].needs[0]`` back to the line
and column it was written on, so errors point at the exact spot.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is much faster; fall back when libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class ManifestError(Exception):
    """A file could not be read or parsed; ``str()`` is the user-facing message."""


@dataclass
class Document:
    """One object read from a manifest source."""

    source: str  # file path or "<stdin>"
    index: int  # 0-based document index within the source
    obj: Any
    node: yaml.Node | None = field(default=None, repr=False)
    item: int | None = None  # index inside a ``kind: List``

    @property
    def line(self) -> int | None:
        """1-based line where the document starts."""
        return self.node.start_mark.line + 1 if self.node is not None else None

    def where(self) -> str:
        """``file.yaml (document 2, line 14)`` for messages."""
        parts = [f"document {self.index + 1}"]
        if self.item is not None:
            parts.append(f"item {self.item + 1}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return f"{self.source} ({', '.join(parts)})"

    def position_of(self, path: str) -> tuple[int, int] | None:
        """(line, column), both 1-based, of the deepest node of ``path`` that exists."""
        node = self.node
        if node is None:
            return None
        best = node
        for key, index in _SEGMENT.findall(path):
            child: yaml.Node | None = None
            if key and isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == key:
                        child = v
                        best = k  # point at the key itself for mappings
                        break
                else:
                    break
            elif index and isinstance(node, yaml.SequenceNode):
                i = int(index)
                if i >= len(node.value):
                    break
                child = node.value[i]
                best = child
            else:
                break
            node = child
        return best.start_mark.line + 1, best.start_mark.column + 1


def _describe_yaml_error(source: str, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
    detail = f"{problem}" + (f" ({context})" if context else "")
    return f"{where}: invalid YAML: {detail}"


def parse_text(text: str, source: str) -> list[Document]:
    """Parse every document in ``text``; empty documents are skipped.

    ``kind: List`` documents are expanded into their ``items``.
    """
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            obj = loader.construct_document(node)
            if obj is not None:
                docs.extend(_expand_list(Document(source, index, obj, node)))
            index += 1
    except yaml.YAMLError as err:
        raise ManifestError(_describe_yaml_error(source, err)) from None
    finally:
        loader.dispose()
    return docs


def _expand_list(doc: Document) -> Iterator[Document]:
    obj = doc.obj
    if (
        isinstance(obj, dict)
        and obj.get("kind") == "List"
        and isinstance(obj.get("items"), list)
        and isinstance(doc.node, yaml.MappingNode)
    ):
        items_node = next(
            (v for k, v in doc.node.value if isinstance(k, yaml.ScalarNode) and k.value == "items"),
            None,
        )
        for i, item in enumerate(obj["items"]):
            node = (
                items_node.value[i]
                if isinstance(items_node, yaml.SequenceNode) and i < len(items_node.value)
                else None
            )
            yield Document(doc.source, doc.index, item, node, item=i)
        return
    yield doc


def _files_in(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)
    return [path]


def load(paths: Iterable[str], *, stdin_text: str | None = None) -> list[Document]:
    """Load every document of ``paths`` (files, directories, ``-`` for stdin)."""
    docs: list[Document] = []
    for raw in paths:
        if raw == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
            docs.extend(parse_text(text, "<stdin>"))
            continue
        path = Path(raw)
        if not path.exists():
            raise ManifestError(f"{raw}: no such file or directory")
        files = _files_in(path)
        if path.is_dir() and not files:
            raise ManifestError(f"{raw}: directory holds no .yaml, .yml or .json files")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise ManifestError(f"{file}: cannot read: {err}") from None
            docs.extend(parse_text(text, str(file)))
    return docs
