"""Gathering a step's Secrets for its launch (reference §8.3, §10.2).

The StepRun controller gathers, with :func:`fetch_secrets`, the Secrets bound through
``Engram.spec.secrets`` and the step's ``secrets`` (:func:`bobrapet.engine.launch_secret_names`)
from the StepRun's namespace (secrets never cross namespaces, even for an Engram of another
namespace); the pure launch decision (:func:`bobrapet.engine.decide_launch`) resolves them,
and a :class:`~bobrapet.engine.SecretProblem` fails the step before any code runs.
:func:`gather_step_secrets` does both for one step.
"""

from __future__ import annotations

from collections.abc import Iterable

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import SECRET
from bobrapet.api.types.story import Step
from bobrapet.controllers.refs import name_of, spec_of
from bobrapet.engine import effective_bindings, resolve_step_secrets
from bobrapet.execution.secrets import StepSecrets
from bobrapet.store.client import Client, Resource


async def fetch_secrets(client: Client, namespace: str, names: Iterable[str]) -> dict[str, Resource | None]:
    """The Secrets ``names`` of ``namespace`` (``None`` for one that does not exist)."""
    found: dict[str, Resource | None] = {}
    for secret_name in names:
        try:
            found[secret_name] = await client.get(SECRET, secret_name, namespace)
        except NotFound:
            found[secret_name] = None
    return found


async def gather_step_secrets(
    client: Client, namespace: str, engram: Resource, template: Resource, step: Step | None
) -> StepSecrets:
    """The step's secrets; raises :class:`~bobrapet.engine.secrets.SecretProblem`."""
    schema = spec_of(template).get("secretSchema")
    bindings = effective_bindings(spec_of(engram).get("secrets"), step.secrets if step is not None else None)
    if not bindings and not schema:
        return StepSecrets()
    found = await fetch_secrets(client, namespace, sorted(set(bindings.values())))
    return resolve_step_secrets(
        bindings=bindings, schema=schema, secrets=found, namespace=namespace, template=name_of(template)
    )
