"""PATCH bodies: JSON merge patch (RFC 7396), JSON patch (RFC 6902) and, for core kinds, strategic merge.

Invariants, as on the API server:

* ``application/merge-patch+json`` and ``application/json-patch+json`` work on every kind;
* ``application/strategic-merge-patch+json`` works only on the core kinds (ConfigMap,
  Secret, Event: what ``kubectl apply`` sends for them); for custom resources it is
  ``415 UnsupportedMediaType``, as the API server answers, and so is server-side apply
  (``application/apply-patch+yaml``), which this server does not offer;
* a body that is not JSON is ``400 BadRequest``; a JSON patch operation that cannot apply
  (a missing path, a failed ``test``) is ``422 Invalid``, naming the operation;
* patching never mutates its input.

The strategic merge here is the subset that the core kinds need: maps merge as in a merge
patch, lists are replaced, ``$patch: replace``/``$patch: delete`` directives in maps act,
and other ``$``-directives (``$setElementOrder``, ``$retainKeys``, ...) are ignored.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from bobrapet.api.errors import BadRequest, StatusError
from bobrapet.api.kinds import Kind
from bobrapet.server.errors import unsupported_media_type
from bobrapet.store.sqlite import mergepatch

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

_NO_APPLY = (
    "server-side apply is not supported by bobrapet serve: use `kubectl apply` without "
    "--server-side (client-side apply sends a merge patch)"
)


def accepted_types(kind: Kind) -> tuple[str, ...]:
    return (JSON_PATCH, MERGE) if kind.crd else (JSON_PATCH, MERGE, STRATEGIC)


def patch_type(content_type: str, kind: Kind) -> str:
    """The patch type of a request's ``Content-Type`` (415 when ``kind`` does not take it)."""
    media = content_type.split(";", 1)[0].strip().lower()
    accepted = accepted_types(kind)
    if media in accepted:
        return media
    if media == APPLY:
        raise unsupported_media_type(media, accepted, _NO_APPLY)
    if media == STRATEGIC:
        hint = f"{kind.plural} are custom resources: use --type merge or --type json"
        raise unsupported_media_type(media, accepted, hint)
    raise unsupported_media_type(media, accepted)


def parse(body: bytes, media: str) -> Any:
    """The patch document (400 BadRequest when it is not JSON of the right shape)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the patch is not valid JSON: {err}") from None
    if media == JSON_PATCH and not isinstance(document, list):
        raise BadRequest(
            'a JSON patch is a list of operations, e.g. [{"op": "replace", "path": "/spec/x", "value": 1}]'
        )
    if media != JSON_PATCH and not isinstance(document, dict):
        raise BadRequest('a merge patch is a JSON object, e.g. {"spec": {"x": 1}}')
    return document


def apply(media: str, target: dict[str, Any], document: Any) -> dict[str, Any]:
    """``target`` with the patch applied (a new object)."""
    if media == JSON_PATCH:
        result = apply_json_patch(copy.deepcopy(target), document)
    elif media == STRATEGIC:
        result = _strategic(target, document)
    else:
        result = mergepatch.apply(target, document)
    if not isinstance(result, dict):
        raise _invalid("the patched document is not an object")
    return result


def _invalid(message: str) -> StatusError:
    return StatusError(f"the patch cannot be applied: {message}", reason="Invalid", code=422)


# --------------------------------------------------------------------------- strategic merge


def _strategic(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    rest = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace" or not isinstance(target, dict):
        return {k: _strategic(None, v) for k, v in rest.items() if v is not None}
    result = dict(target)
    for key, value in rest.items():
        merged = None if value is None else _strategic(result.get(key), value)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


# --------------------------------------------------------------------------- JSON patch


def _tokens(pointer: Any, index: int) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise BadRequest(f'operation {index}: path {pointer!r} is not a JSON pointer (such as "/spec/x")')
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def _list_index(container: list[Any], token: str, *, adding: bool, where: str) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _invalid(f"{where}: {token!r} is not a list index")
    position = int(token)
    if position > len(container) or (position == len(container) and not adding):
        raise _invalid(f"{where}: index {position} is out of range")
    return position


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_list_index(current, token, adding=False, where=where)]
        else:
            raise _invalid(f"{where}: path does not exist")
    return current


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_list_index(parent, last, adding=False, where=where)]
    raise _invalid(f"{where}: path does not exist")


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise _invalid(f"{where}: cannot remove the whole document")
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, adding=False, where=where))
    raise _invalid(f"{where}: path does not exist")


def _add(doc: Any, tokens: list[str], value: Any, where: str, *, replace: bool = False) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _invalid(f"{where}: path does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        position = _list_index(parent, last, adding=not replace, where=where)
        if replace:
            parent[position] = value
        else:
            parent.insert(position, value)
    else:
        raise _invalid(f"{where}: path does not exist")
    return doc


def apply_json_patch(doc: Any, operations: list[Any]) -> Any:
    """RFC 6902 on ``doc`` (modified in place; the result is returned)."""
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise BadRequest(f'operation {index}: expected an object with "op" and "path"')
        op = operation["op"]
        where = f"operation {index} ({op} {operation.get('path')})"
        tokens = _tokens(operation.get("path"), index)
        if op in ("add", "replace", "test") and "value" not in operation:
            raise BadRequest(f'{where}: "value" is required')
        if op == "add":
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]), where)
        elif op == "replace":
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]), where, replace=True)
        elif op == "remove":
            _remove(doc, tokens, where)
        elif op in ("move", "copy"):
            source = _tokens(operation.get("from"), index)
            value = _remove(doc, source, where) if op == "move" else copy.deepcopy(_get(doc, source, where))
            doc = _add(doc, tokens, value, where)
        elif op == "test":
            if _get(doc, tokens, where) != operation["value"]:
                raise _invalid(f"{where}: the value differs from the test value")
        else:
            raise BadRequest(f"operation {index}: unknown op {op!r} (add, remove, replace, move, copy, test)")
    return doc
