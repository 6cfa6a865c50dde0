"""Which kind and object a resource path names (``/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>``).

Invariants: a path resolves only to a kind served at exactly that group, version and scope
(a namespaced path for a cluster-scoped kind, or a ``status`` subresource of a kind without
one, is ``404`` as on the API server); a collection path of a namespaced kind without a
namespace lists every namespace and allows nothing but reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from bobrapet.api.kinds import ALL_KINDS, Kind
from bobrapet.server.errors import method_not_allowed, not_found_path

_BY_PATH: dict[tuple[str, str, str], Kind] = {(k.group, k.version, k.plural): k for k in ALL_KINDS}


def served_kinds() -> tuple[Kind, ...]:
    return ALL_KINDS


def group_versions() -> dict[str, list[str]]:
    """Every served API group (``""``: core) and its versions."""
    groups: dict[str, list[str]] = {}
    for kind in ALL_KINDS:
        versions = groups.setdefault(kind.group, [])
        if kind.version not in versions:
            versions.append(kind.version)
    return groups


def kinds_of(group: str, version: str) -> list[Kind]:
    return [k for k in ALL_KINDS if k.group == group and k.version == version]


@dataclass(frozen=True)
class Target:
    """A request's resource: the kind, the namespace (None: all, or cluster-scoped), the name."""

    kind: Kind
    namespace: str | None
    name: str | None = None
    subresource: str | None = None

    @property
    def is_collection(self) -> bool:
        return self.name is None

    def require_namespace_for_write(self) -> None:
        """Writes to a namespaced kind need the namespace in the path."""
        if self.kind.namespaced and self.namespace is None:
            raise method_not_allowed()


def resolve(
    group: str,
    version: str,
    plural: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> Target:
    """The target of a path (404 ``NotFound`` when the path names nothing served)."""
    kind = _BY_PATH.get((group, version, plural))
    if kind is None:
        raise not_found_path()
    if namespace is not None and not kind.namespaced:
        raise not_found_path()
    if name is not None and kind.namespaced and namespace is None:
        raise not_found_path()
    if subresource is not None and (subresource != "status" or not kind.status_subresource):
        raise not_found_path()
    return Target(kind, namespace, name, subresource)
