"""Loading manifests: files, directories, multi-document YAML and stdin.

Every loaded object remembers where it came from (file, document index, line)
and can map a field path such as ``spec.steps[2].needs[0]`` back to the line
and column it was written on, so errors point at the exact spot.
"""

from __future__ import annotations

import os
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


def _check_duplicate_keys(source: str, root: yaml.Node | None) -> None:
    """Reject a mapping that sets one key twice (YAML would silently keep the last value).

    Walks the node graph iteratively, each node once (aliases are not re-walked).
    """
    seen: set[int] = set()
    stack: list[yaml.Node] = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    earlier = first.setdefault(key.value, key)
                    if earlier is not key:
                        mark = key.start_mark
                        raise ManifestError(
                            f"{source}: line {mark.line + 1}, column {mark.column + 1}: invalid YAML: "
                            f'duplicate key "{key.value}" (first set on line '
                            f"{earlier.start_mark.line + 1}); keep only one of them"
                        )
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def parse_text(text: str, source: str) -> list[Document]:
    """Parse every document in ``text``; empty documents are skipped.

    ``kind: List`` documents are expanded into their ``items``. A mapping that repeats a
    key is an error (as in ``kubectl``), not a silent "last one wins".
    """
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            _check_duplicate_keys(source, node)
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
    """Manifest files under a directory (recursively), or the file itself.

    Hidden entries below the directory (``.git/``, ``.github/``, ``.venv/``,
    ``.bobrapet/``, ``.env.yaml`` …) are skipped: ``apply -f .`` in a project reads the
    project's manifests, not CI configs or installed packages.
    """
    if not path.is_dir():
        return [path]
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # prune: never walk .venv/ etc.
        for name in files:
            candidate = Path(root) / name
            wanted = not name.startswith(".") and candidate.suffix.lower() in MANIFEST_SUFFIXES
            if wanted and candidate.is_file():
                found.append(candidate)
    return sorted(found)


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(
            f"{source}: not a UTF-8 text file (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); manifests must be YAML or JSON text"
        ) from None


def _read_stdin() -> str:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes underneath (e.g. io.StringIO)
        return sys.stdin.read()
    return _decode(buffer.read(), "<stdin>")


def load(paths: Iterable[str], *, stdin_text: str | None = None) -> list[Document]:
    """Load every document of ``paths`` (files, directories, ``-`` for stdin)."""
    docs: list[Document] = []
    for raw in paths:
        if raw == "-":
            text = stdin_text if stdin_text is not None else _read_stdin()
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
                data = file.read_bytes()
            except OSError as err:
                raise ManifestError(f"{file}: cannot read: {err.strerror or err}") from None
            text = _decode(data, str(file))
            docs.extend(parse_text(text, str(file)))
    return docs
