"""The shared reconciler of catalog templates (EngramTemplate, ImpulseTemplate).

For one template it writes (reference §1.6): ``observedGeneration``, ``validationStatus``
(``valid``/``invalid``), ``validationErrors`` (see :mod:`.template_validation`), a
``Ready`` condition (``ValidationPassed``/``ValidationFailed``) and ``usageCount`` (the
instances — Engrams or Impulses, any namespace — whose ``spec.templateRef.name`` names
it). When the kind has a finalizer it is added to live templates and removed when the
template is being deleted. Status is written only when it changed; spec is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from bobrapet.api import conditions
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import ENGRAM, Kind
from bobrapet.controllers import indexes, refs
from bobrapet.controllers.finalizers import ensure_finalizer, remove_finalizer
from bobrapet.controllers.settings import TEMPLATE
from bobrapet.controllers.status import generation, is_deleting, set_or_drop, status_copy, write_status
from bobrapet.controllers.template_validation import validate_template
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import Watch, cached_reverse_mapper, changed, tracking_mapper
from bobrapet.store.client import Resource


@dataclass(frozen=True)
class TemplateKindSpec:
    """What differs between the two template kinds."""

    kind: Kind
    instance_kind: Kind  # Engram or Impulse
    schema_fields: tuple[str, ...]
    allowed_modes: tuple[str, ...] | None


class TemplateReconciler:
    def __init__(self, manager: Manager, spec: TemplateKindSpec) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.spec = spec
        self.instances = (
            indexes.engrams(manager) if spec.instance_kind == ENGRAM else indexes.impulses(manager)
        )

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request))

    async def _reconcile(self, request: Request) -> Result:
        kind = self.spec.kind
        try:
            template = await self.client.get(kind, request.name)
        except NotFound:
            return Result()
        if is_deleting(template):
            if kind.finalizer:
                await remove_finalizer(self.client, template, kind.finalizer)
            return Result()
        if kind.finalizer:
            template = await ensure_finalizer(self.client, template, kind.finalizer)

        errors = validate_template(
            refs.spec_of(template),
            schema_fields=self.spec.schema_fields,
            allowed_modes=self.spec.allowed_modes,
        )
        usage = len(self.instances.by_index(indexes.TEMPLATE_REF, request.name))
        gen = generation(template)
        status = status_copy(template)
        set_or_drop(status, "observedGeneration", gen)
        status["validationStatus"] = "invalid" if errors else "valid"
        set_or_drop(status, "validationErrors", errors)
        status["usageCount"] = usage
        conds: list[dict[str, object]] = status.setdefault("conditions", [])
        if errors:
            conditions.set_condition(
                conds, conditions.READY, False, conditions.Reason.VALIDATION_FAILED, "; ".join(errors),
                observed_generation=gen, now=self.clock.now(),
            )  # fmt: skip
        else:
            conditions.set_condition(
                conds, conditions.READY, True, conditions.Reason.VALIDATION_PASSED,
                f"{kind.kind} is valid", observed_generation=gen, now=self.clock.now(),
            )  # fmt: skip
        await write_status(self.client, template, status)
        return Result()


def _template_requests(obj: Resource) -> list[Request]:
    name = refs.template_name(obj)
    return [Request(None, name)] if name else []


def setup_template_controller(manager: Manager, spec: TemplateKindSpec, name: str) -> Controller:
    """Register the controller of one template kind with ``manager``."""
    reconciler = TemplateReconciler(manager, spec)
    every_template = cached_reverse_mapper(manager.cache(spec.kind), lambda template, obj: True)
    watch = Watch(
        spec.instance_kind,
        tracking_mapper(_template_requests, fallback=every_template),
        changed(refs.template_name),
    )
    controller = Controller(
        name,
        spec.kind,
        reconciler,
        workers=TEMPLATE.workers,
        base_delay=TEMPLATE.base_delay,
        max_delay=TEMPLATE.max_delay,
        reconcile_timeout=TEMPLATE.reconcile_timeout,
        watches=[watch],
    )
    return manager.add(controller)
