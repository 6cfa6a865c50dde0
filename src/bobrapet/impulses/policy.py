"""The delivery policy of an Impulse: its template's ``deliveryPolicy`` overridden field by
field by its own, plus its ``throttle`` (reference §5.4, §5.5).

Invariants:

* :func:`merge_delivery_policy` is pure: every leaf the Impulse sets (``dedupe.mode``,
  ``dedupe.keyTemplate``, ``retry.maxAttempts``, ``retry.baseDelay``, ``retry.maxDelay``,
  ``retry.backoff``) replaces the template's, every other leaf is the template's.
* :meth:`ImpulsePolicy.from_specs` raises :class:`~bobrapet.triggers.DeliveryError` naming the
  field for a policy the triggers package cannot follow (``mode: key`` without a template, a
  bad duration), so the supervisor reports it before the runtime starts.
* :meth:`ImpulsePolicy.env` is the ``BUBU_TRIGGER_*`` environment of §5.4 for the merged
  policy (what a user-written impulse process sees); absent values are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from bobrapet.triggers import DeliveryError, DeliveryMode, RetryPolicy, ThrottlePolicy
from bobrapet.triggers.request import DELIVERY_MODES

DEDUPE_FIELDS = ("mode", "keyTemplate")
RETRY_FIELDS = ("maxAttempts", "baseDelay", "maxDelay", "backoff")

ENV_DEDUPE = {"mode": "BUBU_TRIGGER_DEDUPE_MODE", "keyTemplate": "BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE"}
ENV_RETRY = {
    "maxAttempts": "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS",
    "baseDelay": "BUBU_TRIGGER_RETRY_BASE_DELAY",
    "maxDelay": "BUBU_TRIGGER_RETRY_MAX_DELAY",
    "backoff": "BUBU_TRIGGER_RETRY_BACKOFF",
}
ENV_THROTTLE = {
    "ratePerSecond": "BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND",
    "burst": "BUBU_TRIGGER_THROTTLE_BURST",
    "maxInFlight": "BUBU_TRIGGER_THROTTLE_MAX_IN_FLIGHT",
}


def _section(policy: Any, name: str) -> Mapping[str, Any]:
    value = policy.get(name) if isinstance(policy, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def merge_delivery_policy(template: Any, impulse: Any) -> dict[str, dict[str, Any]]:
    """``{"dedupe": {...}, "retry": {...}}``: the template's leaves, overridden by the Impulse's."""
    merged: dict[str, dict[str, Any]] = {}
    for section, fields in (("dedupe", DEDUPE_FIELDS), ("retry", RETRY_FIELDS)):
        values: dict[str, Any] = {}
        for layer in (_section(template, section), _section(impulse, section)):
            for name in fields:
                if layer.get(name) is not None:
                    values[name] = layer[name]
        merged[section] = values
    return merged


def _env_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class ImpulsePolicy:
    """How every delivery of one Impulse is submitted."""

    mode: DeliveryMode = "none"
    key_template: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    #: The merged wire values (for :meth:`env`).
    wire: Mapping[str, Mapping[str, Any]] | None = None
    throttle_wire: Mapping[str, Any] | None = None

    @classmethod
    def from_specs(cls, template_spec: Mapping[str, Any], impulse_spec: Mapping[str, Any]) -> ImpulsePolicy:
        """The policy of an Impulse (``spec``) instantiating a template (``spec``)."""
        merged = merge_delivery_policy(
            template_spec.get("deliveryPolicy"), impulse_spec.get("deliveryPolicy")
        )
        dedupe = merged["dedupe"]
        mode = dedupe.get("mode") or "none"
        if mode not in DELIVERY_MODES:
            raise DeliveryError(
                f"deliveryPolicy.dedupe.mode must be one of {', '.join(DELIVERY_MODES)}, got {mode!r}"
            )
        template = dedupe.get("keyTemplate")
        if mode == "key" and not (isinstance(template, str) and template.strip()):
            raise DeliveryError(
                "deliveryPolicy.dedupe.mode is key but no keyTemplate is set; add "
                'deliveryPolicy.dedupe.keyTemplate (e.g. "{{ inputs.id }}") or use mode token or none'
            )
        throttle = impulse_spec.get("throttle")
        return cls(
            mode=cast(DeliveryMode, mode),
            key_template=template if mode == "key" else None,
            retry=RetryPolicy.from_wire(merged["retry"]),
            throttle=ThrottlePolicy.from_wire(throttle if isinstance(throttle, Mapping) else None),
            wire=merged,
            throttle_wire=dict(throttle) if isinstance(throttle, Mapping) else None,
        )

    def env(self) -> dict[str, str]:
        """The ``BUBU_TRIGGER_*`` variables of this policy (§5.4)."""
        env: dict[str, str] = {ENV_DEDUPE["mode"]: self.mode}
        wire = self.wire or {}
        for source, names in ((wire.get("dedupe") or {}, ENV_DEDUPE), (wire.get("retry") or {}, ENV_RETRY)):
            for name, variable in names.items():
                if name != "mode" and source.get(name) is not None:
                    env[variable] = _env_text(source[name])
        for name, variable in ENV_THROTTLE.items():
            value = (self.throttle_wire or {}).get(name)
            if value is not None:
                env[variable] = _env_text(value)
        return env
