"""Garbage collection in a ``bobrapet`` process: paused while it starts, skipped at its exit.

Loading the CLI and the engine creates tens of thousands of long-lived objects (modules,
classes, pydantic validators); while they are being created the cyclic collector would walk
all of them again and again, and the interpreter's exit walks them once more, for nothing
(they live as long as the process). So the console entry point:

* pauses collection before the commands load (:func:`pause`);
* once the engine is loaded (the command is about to drive runs), freezes what exists
  (:func:`gc.freeze`: later collections skip those objects) and collects again
  (:func:`resume`), so a long-running engine still frees its cyclic garbage;
* freezes everything before the process exits (:func:`before_exit`).

A command that never loads the engine ends before :func:`resume` is called: it runs briefly
with the collector paused. Programs that call :func:`bobrapet.cli.main.main` directly (tests,
embedders) are not affected: only :func:`bobrapet.cli.main.entry` pauses.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop automatic collection until :func:`resume` (no-op when it is already off)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze the objects loaded so far and collect automatically again (only after :func:`pause`)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def before_exit() -> None:
    """Spare the interpreter's exit its full collections over objects that die with it."""
    gc.freeze()
