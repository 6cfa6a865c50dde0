"""EngramTemplate controller: validation, Ready, usageCount (reference §1.6)."""

from __future__ import annotations

from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE
from bobrapet.controllers.catalog import TemplateKindSpec, setup_template_controller
from bobrapet.controllers.template_validation import ENGRAM_TEMPLATE_SCHEMAS
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager

NAME = "engramtemplate"
SPEC = TemplateKindSpec(
    kind=ENGRAM_TEMPLATE,
    instance_kind=ENGRAM,
    schema_fields=ENGRAM_TEMPLATE_SCHEMAS,
    allowed_modes=None,
)


def setup(manager: Manager) -> Controller:
    return setup_template_controller(manager, SPEC, NAME)
