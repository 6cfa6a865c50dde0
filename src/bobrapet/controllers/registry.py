"""Registering every controller with a manager."""

from __future__ import annotations

from bobrapet.controllers import engram, engramtemplate, impulse, impulsetemplate, story
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager

SETUPS = (engramtemplate.setup, impulsetemplate.setup, engram.setup, impulse.setup, story.setup)


def setup_all(manager: Manager) -> list[Controller]:
    """Add every controller of this package to ``manager`` (before it starts)."""
    return [setup(manager) for setup in SETUPS]
