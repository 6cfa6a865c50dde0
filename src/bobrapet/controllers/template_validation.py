"""Validation of EngramTemplate / ImpulseTemplate specs by their controllers (pure).

What the controllers check (reference §1.6, DESIGN "Execution"):

* ``version`` is required — "version is required";
* a template must say how to run: ``image`` (Kubernetes), ``entrypoint`` (Python engram)
  or ``command`` (any program) — "image, entrypoint or command is required";
* ImpulseTemplates run as long-lived workloads: every ``supportedModes`` entry must be
  ``deployment`` or ``statefulset``;
* every schema field must compile as JSON Schema after draft-3 property-level
  ``required: true`` is lifted (the original catalog uses it) —
  "invalid schema(s): <field>: <error>; ...". Compiling includes what the metaschema
  cannot see: every ``$ref`` must resolve inside the schema (no network) and every
  ``pattern`` / ``patternProperties`` key must be a regular expression; otherwise
  admission of every instance using the template would fail with "schema cannot be used".
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.jsonschema_util import compile_schema, usability_errors

ENGRAM_TEMPLATE_SCHEMAS = ("configSchema", "inputSchema", "outputSchema", "secretSchema")
IMPULSE_TEMPLATE_SCHEMAS = ("configSchema", "contextSchema", "secretSchema")
IMPULSE_MODES = ("deployment", "statefulset")


def schema_errors(spec: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """``"<field>: <error>"`` for every schema field that does not compile."""
    problems: list[str] = []
    for field in fields:
        schema = spec.get(field)
        if schema is None:
            continue
        errors = compile_schema(schema) or usability_errors(schema)
        if errors:
            problems.append(f"{field}: {', '.join(errors)}")
    return problems


def validate_template(
    spec: dict[str, Any],
    *,
    schema_fields: tuple[str, ...],
    allowed_modes: tuple[str, ...] | None = None,
) -> list[str]:
    """The validation errors of a template spec (empty when valid)."""
    errors: list[str] = []
    if not spec.get("version"):
        errors.append("version is required")
    if not (spec.get("image") or spec.get("entrypoint") or spec.get("command")):
        errors.append("image, entrypoint or command is required")
    if allowed_modes is not None:
        bad = [str(m) for m in spec.get("supportedModes") or () if m not in allowed_modes]
        if bad:
            errors.append(
                f"supportedModes: {', '.join(repr(m) for m in bad)} not supported "
                f"(allowed: {', '.join(allowed_modes)})"
            )
    problems = schema_errors(spec, schema_fields)
    if problems:
        errors.append("invalid schema(s): " + "; ".join(problems))
    return errors
