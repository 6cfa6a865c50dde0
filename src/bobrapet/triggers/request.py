"""Building the StoryTrigger of one submission (reference §5.2, §5.4).

Invariants:

* The delivery identity follows §5.4: ``mode: key`` renders the key template
  (:mod:`.key`); ``mode: token`` uses the caller's token as the key; ``mode: none`` with a
  token is token mode; a token given with ``mode: key`` must equal the rendered key.
* ``submissionId`` is the key when there is one, else the injected new id (a UUID), so an
  un-keyed submission is never deduplicated with another one.
* ``inputHash`` is the canonical hash (:func:`~bobrapet.api.admission.identity.canonical_input_hash`)
  of the inputs as stored in the trigger (after any offload); the name is the deterministic
  :func:`~bobrapet.api.admission.identity.story_trigger_name`.
* ``storyRef.version`` pins the Story's ``spec.version`` when the request asks for it.
* Inputs are copied through JSON: the trigger never shares structure with the caller's data,
  and a value JSON cannot carry is a :class:`~.errors.DeliveryError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bobrapet.api.admission.identity import canonical_input_hash, derive_story_run_name, story_trigger_name
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STORY, STORY_TRIGGER
from bobrapet.store.client import Client, Resource
from bobrapet.triggers.errors import DeliveryError, StoryNotFound
from bobrapet.triggers.key import key_variables, render_key
from bobrapet.triggers.offload import OffloadInputs

DeliveryMode = Literal["none", "token", "key"]
DELIVERY_MODES: tuple[str, ...] = get_args(DeliveryMode)
MAX_KEY = 256


def new_submission_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ImpulseRef:
    """The Impulse a trigger comes from (``spec.impulseRef``; its runs count for it)."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    version: str | None = None

    def to_wire(self) -> dict[str, str]:
        wire = {"name": self.name, "namespace": self.namespace, "uid": self.uid, "version": self.version}
        return {k: v for k, v in wire.items() if v}


@dataclass(frozen=True)
class TriggerRequest:
    """One request to start a Story."""

    story: str
    #: Namespace of the StoryTrigger (and of the StoryRun it creates).
    namespace: str = "default"
    #: Namespace of the Story (default: ``namespace``).
    story_namespace: str | None = None
    inputs: Mapping[str, Any] | None = None
    impulse: ImpulseRef | None = None
    mode: DeliveryMode = "none"
    #: The caller's delivery token (``mode: token``; with ``mode: key`` it must equal the key).
    token: str | None = None
    #: The key template of ``mode: key``.
    key_template: str | None = None
    #: Pin ``storyRef.version`` to the Story's ``spec.version`` (when it has one).
    pin_version: bool = True
    #: Annotations of the StoryTrigger (provenance; not part of the immutable request).
    annotations: Mapping[str, str] | None = None

    @property
    def target_namespace(self) -> str:
        return self.story_namespace or self.namespace


def delivery_key(request: TriggerRequest, inputs: Mapping[str, Any]) -> tuple[DeliveryMode, str | None]:
    """The effective mode and key of ``request`` (see the module invariants)."""
    mode, token = request.mode, request.token or None
    if mode not in DELIVERY_MODES:
        raise DeliveryError(f"delivery mode must be one of {', '.join(DELIVERY_MODES)}, got {mode!r}")
    if mode == "key":
        if not (request.key_template or "").strip():
            raise DeliveryError("delivery mode 'key' needs a key template")
        impulse = request.impulse
        variables = key_variables(
            inputs,
            request.story,
            request.target_namespace,
            impulse.name if impulse else "",
            (impulse.namespace if impulse else None) or request.namespace,
        )
        key = render_key(str(request.key_template), variables)
        if token is not None and token != key:
            raise DeliveryError("the delivery token does not match the key its key template renders")
        return "key", key
    if mode == "token" and token is None:
        raise DeliveryError("delivery mode 'token' needs a token")
    if token is None:
        return "none", None
    if len(token) > MAX_KEY:
        raise DeliveryError(
            f"the delivery token is {len(token)} characters long; at most {MAX_KEY} are allowed"
        )
    return "token", token


def json_inputs(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON copy of ``inputs`` (``{}`` when absent)."""
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise DeliveryError(f"inputs must be a JSON object (a mapping), got {type(inputs).__name__}")
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(inputs), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise DeliveryError(f"inputs must be JSON data: {err}") from None
    return copied


def trigger_object(
    request: TriggerRequest,
    *,
    mode: DeliveryMode,
    key: str | None,
    submission_id: str,
    inputs: dict[str, Any],
    version: str | None = None,
) -> Resource:
    """The StoryTrigger for ``request`` with the identity already decided (pure)."""
    story_ns = request.target_namespace
    story_ref: dict[str, str] = {"name": request.story}
    if story_ns != request.namespace:
        story_ref["namespace"] = story_ns
    if version:
        story_ref["version"] = version
    identity: dict[str, str] = {"mode": mode}
    if key:
        identity["key"] = key
    identity["inputHash"] = canonical_input_hash(inputs)
    identity["submissionId"] = key or submission_id
    spec: dict[str, Any] = {"storyRef": story_ref}
    if request.impulse is not None:
        spec["impulseRef"] = request.impulse.to_wire()
    if inputs:
        spec["inputs"] = inputs
    spec["deliveryIdentity"] = identity
    metadata: dict[str, Any] = {
        "name": story_trigger_name(story_ns, request.story, identity["submissionId"]),
        "namespace": request.namespace,
    }
    if request.annotations:
        metadata["annotations"] = dict(request.annotations)
    return {
        "apiVersion": STORY_TRIGGER.api_version,
        "kind": STORY_TRIGGER.kind,
        "metadata": metadata,
        "spec": spec,
    }


async def story_version(client: Client, request: TriggerRequest) -> str | None:
    """The Story's ``spec.version`` (None when unversioned); :class:`StoryNotFound` when missing."""
    ns = request.target_namespace
    try:
        story = await client.get(STORY, request.story, ns)
    except NotFound:
        known = sorted(str(s["metadata"]["name"]) for s in await client.list(STORY, ns))
        raise StoryNotFound(request.story, ns, known) from None
    version = (story.get("spec") or {}).get("version")
    return str(version) if version else None


async def build_trigger(
    client: Client,
    request: TriggerRequest,
    *,
    submission_id: str | Callable[[], str] = new_submission_id,
    offload_inputs: OffloadInputs | None = None,
) -> Resource:
    """The StoryTrigger to create for ``request``: reads the Story (existence, version pin),
    decides the identity and, with ``offload_inputs``, moves large inputs to storage first."""
    version = await story_version(client, request)
    inputs = json_inputs(request.inputs)
    mode, key = delivery_key(request, inputs)
    submission = key or (submission_id() if callable(submission_id) else submission_id)
    if offload_inputs is not None:
        run_name = derive_story_run_name(request.target_namespace, request.story, submission)
        inputs = await offload_inputs(request.namespace, run_name, inputs)
    return trigger_object(
        request,
        mode=mode,
        key=key,
        submission_id=submission,
        inputs=inputs,
        version=version if request.pin_version else None,
    )
