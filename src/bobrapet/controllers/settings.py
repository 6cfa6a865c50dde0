"""Per-controller concurrency and back-off defaults (reference §9.1, in-process values).

``workers`` is ``<controller>.max-concurrent-reconciles``; ``base_delay``/``max_delay``
are the per-key exponential back-off of failed reconciles
(``<controller>.rate-limiter.base-delay``/``max-delay``); ``reconcile_timeout`` is
``controller.reconcile-timeout`` (30 s in-process default).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControllerSettings:
    workers: int
    base_delay: float
    max_delay: float
    reconcile_timeout: float | None = 30.0


STORY = ControllerSettings(workers=5, base_delay=0.2, max_delay=60.0)
ENGRAM = ControllerSettings(workers=5, base_delay=0.2, max_delay=60.0)
IMPULSE = ControllerSettings(workers=5, base_delay=0.2, max_delay=60.0)
STORY_TRIGGER = ControllerSettings(workers=5, base_delay=0.2, max_delay=60.0)
TEMPLATE = ControllerSettings(workers=2, base_delay=0.5, max_delay=600.0)
EFFECT_CLAIM = ControllerSettings(workers=2, base_delay=0.2, max_delay=60.0)
