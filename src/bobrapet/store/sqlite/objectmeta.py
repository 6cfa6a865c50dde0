"""Object metadata rules of the Kubernetes API server, as pure functions.

These functions turn what a caller sent into what gets stored, following the
API server's create/update strategies for custom resources with a status
subresource:

* create: the server assigns ``uid``, ``creationTimestamp`` and
  ``generation: 1``; ``resourceVersion`` must not be sent; ``deletionTimestamp``
  is cleared; ``status`` is dropped for kinds with a status subresource;
  ``generateName`` produces ``prefix + 5 random characters``.
* update: ``status`` comes from the stored object; ``uid``,
  ``creationTimestamp``, ``generation``, ``deletionTimestamp`` and
  ``deletionGracePeriodSeconds`` cannot be changed; ``generation`` grows by one
  only when ``spec`` changed (every non-metadata field for kinds without a
  status subresource); no new finalizer may be added to an object being deleted.
* status update: only ``status`` comes from the caller.

They never mutate their arguments' nested values in place except the ``obj``
they are explicitly documented to fill (callers pass private copies).
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from bobrapet.api.errors import BadRequest, Cause, Invalid
from bobrapet.api.kinds import Kind
from bobrapet.store.selectors import validate_label_key, validate_label_value

Obj = dict[str, Any]

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LENGTH = 5
MAX_GENERATE_PREFIX = 63 - GENERATE_SUFFIX_LENGTH
DEFAULT_NAMESPACE = "default"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Fields the server owns: preserved from the stored object on update.
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision (``2026-11-30T05:00:00Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    """``prefix`` (truncated to 58 characters) plus five random characters."""
    suffix = "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(GENERATE_SUFFIX_LENGTH))
    return prefix[:MAX_GENERATE_PREFIX] + suffix


def kind_label(kind: Kind) -> str:
    """How ``Invalid`` errors name a kind (``Story``; the group goes into ``details.group``)."""
    return kind.kind


def metadata_of(kind: Kind, obj: Obj) -> Obj:
    """``obj['metadata']`` checked to be a mapping (BadRequest otherwise)."""
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
        obj["metadata"] = meta
    if not isinstance(meta, dict):
        raise BadRequest(f"{kind.kind}: metadata must be a mapping, got {type(meta).__name__}")
    return meta


def _check_string_map(meta: Obj, field: str, causes: list[Cause]) -> None:
    value = meta.get(field)
    if value is None:
        return
    if not isinstance(value, dict):
        causes.append(Cause(f"metadata.{field}", f"must be a mapping of strings, got {value!r}"))
        return
    for key, item in value.items():
        key_problem = validate_label_key(key)
        if key_problem:
            causes.append(Cause(f"metadata.{field}", f"Invalid value: {key_problem}"))
        if not isinstance(item, str):
            causes.append(
                Cause(
                    f"metadata.{field}.{key}",
                    f'must be a string, got {item!r} (quote it in YAML, e.g. "{item}")',
                )
            )
        elif field == "labels":
            value_problem = validate_label_value(item)
            if value_problem:
                causes.append(Cause(f"metadata.labels.{key}", f"Invalid value: {value_problem}"))


def check_metadata(kind: Kind, obj: Obj, *, creating: bool) -> None:
    """Validate name, namespace, labels, annotations and finalizers (Invalid)."""
    meta = metadata_of(kind, obj)
    name = meta.get("name")
    causes: list[Cause] = []
    prefix = meta.get("generateName")
    if creating and isinstance(prefix, str) and prefix:
        # As the API server: a trailing '-' is allowed in the prefix (the suffix follows it).
        masked = prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix
        if len(masked) > 253 or not _DNS_SUBDOMAIN.match(masked):
            causes.append(
                Cause(
                    "metadata.generateName",
                    f"Invalid value: {prefix!r}: a name prefix must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start with an alphanumeric "
                    "character (e.g. 'run-')",
                )
            )
    if not isinstance(name, str) or not name:
        if creating:
            causes.append(Cause("metadata.name", "name or generateName is required", "FieldValueRequired"))
        else:
            causes.append(Cause("metadata.name", "name is required", "FieldValueRequired"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(
            Cause(
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        )
    namespace = meta.get("namespace")
    if kind.namespaced and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace)
    ):
        causes.append(
            Cause(
                "metadata.namespace",
                f"Invalid value: {namespace!r}: a lowercase RFC 1123 label must consist of lower case "
                "alphanumeric characters or '-', start and end with an alphanumeric character and be "
                "at most 63 characters",
            )
        )
    _check_string_map(meta, "labels", causes)
    _check_string_map(meta, "annotations", causes)
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) and f for f in finalizers)
    ):
        causes.append(Cause("metadata.finalizers", "must be a list of non-empty strings"))
    refs = meta.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list):
            causes.append(Cause("metadata.ownerReferences", "must be a list"))
        else:
            controllers: list[str] = []
            for i, ref in enumerate(refs):
                if isinstance(ref, dict) and ref.get("controller") is True:
                    controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
                if not isinstance(ref, dict):
                    causes.append(Cause(f"metadata.ownerReferences[{i}]", "must be a mapping"))
                    continue
                for required in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref.get(required), str) or not ref[required]:
                        causes.append(
                            Cause(
                                f"metadata.ownerReferences[{i}].{required}",
                                f"Required value: {required} must not be empty",
                                "FieldValueRequired",
                            )
                        )
            if len(controllers) > 1:
                causes.append(
                    Cause(
                        "metadata.ownerReferences",
                        "Invalid value: Only one reference can have Controller set to true. "
                        f'Found "true" in references for {controllers[0]} and {controllers[1]}',
                    )
                )
    if causes:
        raise Invalid(kind_label(kind), str(name or ""), causes, group=kind.group or None)


def normalise_namespace(kind: Kind, obj: Obj) -> None:
    """Default the namespace of namespaced kinds; clear it for cluster-scoped ones."""
    meta = metadata_of(kind, obj)
    if kind.namespaced:
        if not meta.get("namespace"):
            meta["namespace"] = DEFAULT_NAMESPACE
    else:
        meta.pop("namespace", None)


def _normalise_secret(kind: Kind, obj: Obj) -> None:
    """Secrets: ``stringData`` is merged into base64 ``data``; ``type`` defaults to Opaque."""
    if kind.kind != "Secret" or kind.group:
        return
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.get("data")
        if not isinstance(data, dict):
            data = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    obj.setdefault("type", "Opaque")


def prepare_create(kind: Kind, obj: Obj, now: datetime, uid: str) -> None:
    """Fill ``obj`` (a private copy) the way the API server does on create."""
    normalise_namespace(kind, obj)
    meta = obj["metadata"]
    if meta.get("resourceVersion"):
        raise BadRequest(
            f"{kind.kind} {meta.get('name') or meta.get('generateName') or ''!s}: "
            "metadata.resourceVersion must not be set on objects to be created; remove it"
        )
    meta.pop("resourceVersion", None)
    if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        meta["name"] = generate_name(meta["generateName"])
    meta["uid"] = uid
    meta["creationTimestamp"] = format_time(now)
    meta["generation"] = 1
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    if kind.status_subresource:
        obj.pop("status", None)
    _normalise_secret(kind, obj)


def _non_meta(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def spec_changed(kind: Kind, new: Obj, old: Obj) -> bool:
    """Whether ``generation`` must grow: spec (or, without a status subresource, any data) changed."""
    if kind.status_subresource:
        return bool(new.get("spec") != old.get("spec"))
    return _non_meta(new) != _non_meta(old)


def prepare_update(kind: Kind, obj: Obj, old: Obj) -> None:
    """Fill ``obj`` (a private copy) from the stored ``old`` as an update does."""
    normalise_namespace(kind, obj)
    meta = obj["metadata"]
    old_meta = old["metadata"]
    for field in _SYSTEM_FIELDS:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    if kind.status_subresource:
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)
    _normalise_secret(kind, obj)
    generation = int(old_meta.get("generation") or 1)
    meta["generation"] = generation + 1 if spec_changed(kind, obj, old) else generation
    if old_meta.get("deletionTimestamp"):
        before = set(old_meta.get("finalizers") or [])
        added = [f for f in meta.get("finalizers") or [] if f not in before]
        if added:
            raise Invalid(
                kind_label(kind),
                str(meta.get("name") or ""),
                [
                    Cause(
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {added!r}",
                        "FieldValueForbidden",
                    )
                ],
                group=kind.group or None,
            )


def prepare_status(obj: Obj, old: Obj) -> Obj:
    """The stored object with only ``status`` taken from ``obj``."""
    new: Obj = {k: v for k, v in old.items() if k != "status"}
    new["metadata"] = dict(old["metadata"])
    if "status" in obj:
        new["status"] = obj["status"]
    return new


def same_object(new: Obj, old: Obj) -> bool:
    """Equal ignoring ``metadata.resourceVersion`` (a write would change nothing)."""
    if new.keys() != old.keys():
        return False
    for key, value in new.items():
        if key == "metadata":
            a = {k: v for k, v in value.items() if k != "resourceVersion"}
            b = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
            if a != b:
                return False
        elif value != old[key]:
            return False
    return True


def is_being_removed(obj: Obj) -> bool:
    """Deletion requested and no finalizer left: the object must disappear."""
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
