"""ImpulseTemplate controller: validation (deployment/statefulset modes only), Ready,
usageCount and the ``impulsetemplate.catalog.bubustack.io/finalizer`` (reference §1.6)."""

from __future__ import annotations

from bobrapet.api.kinds import IMPULSE, IMPULSE_TEMPLATE
from bobrapet.controllers.catalog import TemplateKindSpec, setup_template_controller
from bobrapet.controllers.template_validation import IMPULSE_MODES, IMPULSE_TEMPLATE_SCHEMAS
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager

NAME = "impulsetemplate"
SPEC = TemplateKindSpec(
    kind=IMPULSE_TEMPLATE,
    instance_kind=IMPULSE,
    schema_fields=IMPULSE_TEMPLATE_SCHEMAS,
    allowed_modes=IMPULSE_MODES,
)


def setup(manager: Manager) -> Controller:
    return setup_template_controller(manager, SPEC, NAME)
