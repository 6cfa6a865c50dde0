"""Gathering a step's Secrets for its launch (reference §8.3, §10.2).

The StepRun controller calls :func:`gather_step_secrets` before it claims an attempt: it
reads the Secrets bound through ``Engram.spec.secrets`` and the step's ``secrets`` from the
StepRun's namespace (secrets never cross namespaces, even for an Engram of another
namespace) and lets the pure :func:`bobrapet.engine.secrets.resolve_step_secrets` decide;
its :class:`~bobrapet.engine.secrets.SecretProblem` fails the step before any code runs.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import SECRET
from bobrapet.api.types.story import Step
from bobrapet.controllers.refs import name_of, spec_of
from bobrapet.engine import effective_bindings, resolve_step_secrets
from bobrapet.executors.secrets import StepSecrets
from bobrapet.store.client import Client, Resource


async def gather_step_secrets(
    client: Client, namespace: str, engram: Resource, template: Resource, step: Step | None
) -> StepSecrets:
    """The step's secrets; raises :class:`~bobrapet.engine.secrets.SecretProblem`."""
    schema = spec_of(template).get("secretSchema")
    bindings = effective_bindings(spec_of(engram).get("secrets"), step.secrets if step is not None else None)
    if not bindings and not schema:
        return StepSecrets()
    found: dict[str, Resource | None] = {}
    for secret_name in sorted(set(bindings.values())):
        obj: Any
        try:
            obj = await client.get(SECRET, secret_name, namespace)
        except NotFound:
            obj = None
        found[secret_name] = obj
    return resolve_step_secrets(
        bindings=bindings, schema=schema, secrets=found, namespace=namespace, template=name_of(template)
    )
