"""The engine's clean-up for a command that deletes runs without running an engine.

``bobrapet delete`` removes objects from the store; :func:`cleaning_up` watches the home while
it does and then removes what the deleted StepRuns, StoryRuns and StoryTriggers left outside
the store (blobs, logs, the triggers of deleted runs), exactly as a running engine's clean-up
(:mod:`bobrapet.controllers.leftovers`) does — so deleting a run frees its storage at once,
whether or not an engine runs on the home.

Invariants: the deletions must happen inside the ``async with`` block (the watch starts
before it is entered); nothing is removed when the block raises; a storage setting that
cannot be loaded leaves the blobs (a later engine's sweep removes them) but never fails the
command (only the logs and triggers are then removed).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace

from bobrapet.controllers.leftovers import Leftovers
from bobrapet.engine.config import EngineConfig
from bobrapet.host.config_file import ConfigFileError, load
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.storage import resolve_storage
from bobrapet.runtime.manager import Manager
from bobrapet.storage.settings import StorageSettings

log = logging.getLogger("bobrapet.host.cleanup")

#: How long the watch may take to deliver the deletions once the block ended.
DELIVERY = 5.0


@contextlib.asynccontextmanager
async def cleaning_up(plane: ControlPlane) -> AsyncIterator[Leftovers]:
    """Note the deletions made inside the block; remove what they left behind on exit."""
    try:
        config = load(plane.home).engine
        config = replace(config, storage=resolve_storage(config.storage, plane.home, os.environ))
    except ConfigFileError as err:
        log.warning("the deleted runs' blobs are left to an engine's sweep: %s", err)
        config = EngineConfig(storage=StorageSettings())  # storage off: logs and triggers only
    manager = Manager(plane.client, settle=0.05)
    leftovers = Leftovers(manager, plane.home, config, background=False)
    manager.add_runnable(leftovers)
    async with manager:
        yield leftovers
        await manager.wait_idle(timeout=DELIVERY)
        await leftovers.flush()
