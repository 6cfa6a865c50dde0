"""Registering every controller with a manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bobrapet.controllers import (
    effectclaim,
    engram,
    engramtemplate,
    impulse,
    impulsetemplate,
    story,
    storytrigger,
)
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager

if TYPE_CHECKING:
    from bobrapet.controllers.execution import ExecutionEnv
    from bobrapet.triggers import OffloadInputs

#: The controllers of every process that settles; the StoryTrigger controller is one of them
#: (it only creates StoryRuns, which engines drive).
SETUPS = (
    engramtemplate.setup,
    impulsetemplate.setup,
    engram.setup,
    impulse.setup,
    story.setup,
    effectclaim.setup,
)


def setup_all(
    manager: Manager, execution: ExecutionEnv | None = None, *, offload_inputs: OffloadInputs | None = None
) -> list[Controller]:
    """Add every controller of this package to ``manager`` (before it starts).

    The StoryRun and StepRun controllers, and the clean-up of what deleted runs leave behind
    (:mod:`.leftovers`), are added only with an ``execution`` environment (engine processes);
    without one, runs are stored but not executed. ``offload_inputs`` lets the StoryTrigger
    controller move oversized run inputs to storage (the host builds it from the home's
    storage settings; None: such triggers are rejected).
    """
    controllers = [setup(manager) for setup in SETUPS]
    controllers.append(storytrigger.setup(manager, offload_inputs))
    if execution is not None:
        from bobrapet.controllers import events, leftovers, steprun, storyrun

        run_controller, run_reconciler = storyrun.setup(manager, execution)
        step_controller, step_reconciler = steprun.setup(manager, execution)
        run_reconciler.create_step_run = step_reconciler.create_launched
        step_reconciler.run_of = run_reconciler.planned_run
        controllers += [run_controller, step_controller]
        controllers.append(events.setup(manager, execution.config.event_ttl_seconds))
        leftovers.setup(manager, execution.home, execution.config)
    return controllers
