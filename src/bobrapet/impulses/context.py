"""What the supervisor gives an impulse runtime besides its ``spec.with``.

Invariants: a runtime reads time only from ``context.clock`` (tests use a fake clock) and
logs only through ``context.logger``; it keeps state that must survive a restart only in
``context.state`` (one small JSON object per Impulse); it learns about and cancels the runs it
started only through ``context.runs``. With ``debug`` set, every delivery is logged at INFO as
a truncated preview, secret values (``redact_terms``) hidden. ``secrets`` holds the values of
the Secrets the Impulse binds (``spec.secrets``, logical name -> key -> text), resolved by the
supervisor before the runtime is built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bobrapet.impulses.delivery import Delivery
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.sdk.preview import preview


class ImpulseState(Protocol):
    """A small JSON object persisted for one Impulse (status or annotation, the supervisor's choice)."""

    async def load(self) -> Mapping[str, Any] | None:
        """The object last saved, or ``None`` if there is none."""
        ...

    async def save(self, state: Mapping[str, Any]) -> None:
        """Persist ``state`` (replacing the previous object); return once it is durable."""
        ...


class RunControl(Protocol):
    """The StoryRuns this Impulse started."""

    async def active_runs(self) -> Sequence[str]:
        """Names of this Impulse's StoryRuns that have not finished."""
        ...

    async def cancel(self, run: str) -> None:
        """Ask StoryRun ``run`` to stop (return once the request is stored)."""
        ...


@dataclass(frozen=True)
class ImpulseContext:
    """The Impulse's identity and the services a runtime may use."""

    namespace: str
    name: str
    clock: Clock = field(default_factory=RealClock)
    debug: bool = False
    state: ImpulseState | None = None
    runs: RunControl | None = None
    logger: logging.Logger | None = None
    redact_terms: tuple[str, ...] = ()
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def log(self) -> logging.Logger:
        return self.logger or logging.getLogger(f"bobrapet.impulses.{self.namespace}.{self.name}")

    @property
    def identity(self) -> str:
        """``<namespace>.<name>``: stable per Impulse (default consumer and group names)."""
        return f"{self.namespace}.{self.name}"

    def trace(self, delivery: Delivery) -> None:
        """Log a preview of ``delivery`` when debugging is on."""
        if not self.debug:
            return
        self.log.info(
            "delivery key=%s headers=%s body=%s",
            delivery.key,
            preview(dict(delivery.headers), terms=self.redact_terms),
            preview(delivery.body, terms=self.redact_terms),
        )
