"""The registry of every resource kind Bobrapet knows.

A :class:`Kind` names a resource type the way the Kubernetes API does (group,
version, kind, plural, scope) and points at the pydantic model that defines its
wire shape. Every layer refers to kinds through this registry; nothing else
hard-codes plurals or groups.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

CORE = "bubustack.io"
CATALOG = "catalog.bubustack.io"
RUNS = "runs.bubustack.io"
TRANSPORT = "transport.bubustack.io"
POLICY = "policy.bubustack.io"
VERSION = "v1alpha1"


@dataclass(frozen=True)
class Kind:
    """One resource type: identity, names, scope and its model."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    model_path: str  # "module:Class" of the pydantic model for the whole object
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = True
    # printer columns: (name, type, jsonPath, priority)
    columns: tuple[tuple[str, str, str, int], ...] = ()
    selectable_fields: tuple[str, ...] = ()
    finalizer: str | None = None
    crd: bool = True  # False for core v1 kinds the embedded store holds

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified_plural(self) -> str:
        """``stories.bubustack.io`` (the CRD name); core kinds are just the plural."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def model(self) -> type[BaseModel]:
        module_name, _, attr = self.model_path.partition(":")
        model: type[BaseModel] = getattr(importlib.import_module(module_name), attr)
        return model

    def __str__(self) -> str:
        return self.kind

    def build_model(self) -> None:
        """Build the model's validators now (they are built on first use otherwise)."""
        self.model.model_rebuild()


_T = "bobrapet.api.types"
_AGE = ("Age", "date", ".metadata.creationTimestamp", 0)

STORY = Kind(
    CORE,
    VERSION,
    "Story",
    "stories",
    True,
    f"{_T}.story:Story",
    short_names=("story",),
    categories=("bubu", "ai", "workflows"),
    columns=(
        ("Steps", "integer", ".status.stepsTotal", 0),
        ("Status", "string", ".status.validationStatus", 0),
        ("Usage", "integer", ".status.usageCount", 0),
        ("Triggers", "integer", ".status.triggers", 0),
        _AGE,
    ),
    finalizer="story.bubustack.io/finalizer",
)
ENGRAM = Kind(
    CORE,
    VERSION,
    "Engram",
    "engrams",
    True,
    f"{_T}.engram:Engram",
    short_names=("engram",),
    categories=("bubu", "ai"),
    columns=(
        ("Template", "string", ".spec.templateRef.name", 0),
        ("Mode", "string", ".spec.mode", 0),
        ("Status", "string", ".status.validationStatus", 0),
        ("Usage", "integer", ".status.usageCount", 0),
        ("Triggers", "integer", ".status.triggers", 0),
        _AGE,
    ),
)
IMPULSE = Kind(
    CORE,
    VERSION,
    "Impulse",
    "impulses",
    True,
    f"{_T}.impulse:Impulse",
    short_names=("imp",),
    categories=("bubu", "ai"),
    columns=(
        ("Template", "string", ".spec.templateRef.name", 0),
        ("Story", "string", ".spec.storyRef.name", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Triggers", "integer", ".status.triggersReceived", 0),
        _AGE,
    ),
)
_TEMPLATE_COLUMNS = (
    ("Description", "string", ".spec.description", 1),
    ("Version", "string", ".spec.version", 0),
    ("Usage", "integer", ".status.usageCount", 0),
    ("Status", "string", ".status.validationStatus", 0),
    _AGE,
)
ENGRAM_TEMPLATE = Kind(
    CATALOG,
    VERSION,
    "EngramTemplate",
    "engramtemplates",
    False,
    f"{_T}.catalog:EngramTemplate",
    short_names=("etpl",),
    categories=("bubu", "ai", "catalog"),
    columns=_TEMPLATE_COLUMNS,
)
IMPULSE_TEMPLATE = Kind(
    CATALOG,
    VERSION,
    "ImpulseTemplate",
    "impulsetemplates",
    False,
    f"{_T}.catalog:ImpulseTemplate",
    short_names=("itpl",),
    categories=("bubu", "ai", "catalog"),
    columns=_TEMPLATE_COLUMNS,
    finalizer="impulsetemplate.catalog.bubustack.io/finalizer",
)
STORY_RUN = Kind(
    RUNS,
    VERSION,
    "StoryRun",
    "storyruns",
    True,
    f"{_T}.storyrun:StoryRun",
    short_names=("srun",),
    categories=("bubu", "ai", "runs"),
    columns=(
        ("Story", "string", ".spec.storyRef.name", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Duration", "string", ".status.duration", 0),
        _AGE,
    ),
    selectable_fields=(".spec.storyRef.name", ".status.phase"),
    finalizer="storyrun.bubustack.io/finalizer",
)
STEP_RUN = Kind(
    RUNS,
    VERSION,
    "StepRun",
    "stepruns",
    True,
    f"{_T}.steprun:StepRun",
    short_names=("step",),
    categories=("bubu", "ai", "runs"),
    columns=(
        ("StoryRun", "string", ".spec.storyRunRef.name", 0),
        ("Step", "string", ".spec.stepId", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Retries", "integer", ".status.retries", 0),
        _AGE,
    ),
    selectable_fields=(".spec.storyRunRef.name", ".spec.stepId", ".status.phase"),
    finalizer="steprun.bubustack.io/finalizer",
)
STORY_TRIGGER = Kind(
    RUNS,
    VERSION,
    "StoryTrigger",
    "storytriggers",
    True,
    f"{_T}.storytrigger:StoryTrigger",
    short_names=("trig",),
    categories=("bubu", "ai", "runs"),
    columns=(
        ("Story", "string", ".spec.storyRef.name", 0),
        ("Decision", "string", ".status.decision", 0),
        ("StoryRun", "string", ".status.storyRunRef.name", 0),
        _AGE,
    ),
)
EFFECT_CLAIM = Kind(
    RUNS,
    VERSION,
    "EffectClaim",
    "effectclaims",
    True,
    f"{_T}.effectclaim:EffectClaim",
    short_names=("eff",),
    categories=("bubu", "ai", "runs"),
    columns=(
        ("StepRun", "string", ".spec.stepRunRef.name", 0),
        ("Effect", "string", ".spec.effectKey", 0),
        ("Holder", "string", ".spec.holderIdentity", 0),
        ("Phase", "string", ".status.phase", 0),
        _AGE,
    ),
)
TRANSPORT_KIND = Kind(
    TRANSPORT,
    VERSION,
    "Transport",
    "transports",
    False,
    f"{_T}.transport:Transport",
    short_names=("transport",),
    categories=("bubu", "ai"),
    columns=(
        ("Provider", "string", ".spec.provider", 0),
        ("Driver", "string", ".spec.driver", 0),
        ("Status", "string", ".status.validationStatus", 0),
        _AGE,
    ),
)
TRANSPORT_BINDING = Kind(
    TRANSPORT,
    VERSION,
    "TransportBinding",
    "transportbindings",
    True,
    f"{_T}.transport:TransportBinding",
    short_names=("tb", "tbind"),
    categories=("bubu", "transport"),
    columns=(
        ("Transport", "string", ".spec.transportRef", 0),
        ("Step", "string", ".spec.stepName", 0),
        ("Driver", "string", ".spec.driver", 0),
        ("Endpoint", "string", ".status.endpoint", 0),
        _AGE,
    ),
    selectable_fields=(".spec.transportRef", ".spec.storyRunRef.name"),
)
REFERENCE_GRANT = Kind(
    POLICY,
    VERSION,
    "ReferenceGrant",
    "referencegrants",
    True,
    f"{_T}.policy:ReferenceGrant",
    short_names=("refgrant",),
    categories=("bubu", "ai"),
    columns=(_AGE,),
)
CONFIG_MAP = Kind(
    "",
    "v1",
    "ConfigMap",
    "configmaps",
    True,
    f"{_T}.core:ConfigMap",
    short_names=("cm",),
    status_subresource=False,
    crd=False,
    columns=(_AGE,),
)
SECRET = Kind(
    "",
    "v1",
    "Secret",
    "secrets",
    True,
    f"{_T}.core:Secret",
    status_subresource=False,
    crd=False,
    columns=(("Type", "string", ".type", 0), _AGE),
)
EVENT = Kind(
    "",
    "v1",
    "Event",
    "events",
    True,
    f"{_T}.core:Event",
    short_names=("ev",),
    status_subresource=False,
    crd=False,
    columns=(
        ("Last Seen", "date", ".lastTimestamp", 0),
        ("Type", "string", ".type", 0),
        ("Reason", "string", ".reason", 0),
        ("Object", "string", ".involvedObject.name", 0),
        ("Count", "integer", ".count", 1),
        ("Message", "string", ".message", 0),
    ),
    selectable_fields=(
        ".involvedObject.kind",
        ".involvedObject.name",
        ".involvedObject.uid",
        ".reason",
        ".type",
    ),
)

ALL_KINDS: tuple[Kind, ...] = (
    STORY,
    ENGRAM,
    IMPULSE,
    ENGRAM_TEMPLATE,
    IMPULSE_TEMPLATE,
    STORY_RUN,
    STEP_RUN,
    STORY_TRIGGER,
    EFFECT_CLAIM,
    TRANSPORT_KIND,
    TRANSPORT_BINDING,
    REFERENCE_GRANT,
    CONFIG_MAP,
    SECRET,
    EVENT,
)
CRD_KINDS: tuple[Kind, ...] = tuple(k for k in ALL_KINDS if k.crd)


@dataclass
class _Index:
    by_gvk: dict[tuple[str, str], Kind] = field(default_factory=dict)
    by_alias: dict[str, Kind] = field(default_factory=dict)


def _build_index() -> _Index:
    index = _Index()
    for k in ALL_KINDS:
        index.by_gvk[(k.api_version, k.kind)] = k
        aliases = {k.plural, k.singular, k.kind.lower(), *k.short_names}
        for alias in aliases:
            index.by_alias.setdefault(alias, k)
            if k.group:
                index.by_alias.setdefault(f"{alias}.{k.group}", k)
                index.by_alias.setdefault(f"{alias}.{k.version}.{k.group}", k)
    return index


_INDEX = _build_index()


def for_object(api_version: str, kind: str) -> Kind | None:
    """The kind an object's ``apiVersion``/``kind`` pair names, or ``None``."""
    return _INDEX.by_gvk.get((api_version, kind))


def resolve(name: str) -> Kind | None:
    """Resolve what a user typed (plural, singular, short name, ``kind.group``)."""
    return _INDEX.by_alias.get(name.strip().lower())


def all_aliases() -> list[str]:
    return sorted(_INDEX.by_alias)


def known_api_versions() -> list[str]:
    return sorted({k.api_version for k in ALL_KINDS})
