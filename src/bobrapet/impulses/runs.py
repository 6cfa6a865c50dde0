"""The StoryRuns an Impulse started (:class:`~bobrapet.impulses.context.RunControl`), and the
graceful cancel request every client uses (reference §4.7).

Invariants: a run belongs to an Impulse when its ``spec.impulseRef`` names it (the namespace
defaulting to the run's); it is active until its phase is terminal. :func:`request_cancel`
sets ``spec.cancelRequested: true`` (the only spec change a StoryRun admits), re-reading the
run on every conflict, and leaves a finished run, or one already asked to stop, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from bobrapet.api.kinds import STORY_RUN
from bobrapet.api.phases import is_terminal_phase
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client, Resource


class CancelOutcome(Enum):
    REQUESTED = "requested"
    ALREADY_REQUESTED = "already requested"
    FINISHED = "finished"


def run_phase(run: Resource) -> str | None:
    phase = (run.get("status") or {}).get("phase")
    return str(phase) if phase else None


async def request_cancel(client: Client, name: str, namespace: str) -> tuple[CancelOutcome, Resource]:
    """Ask StoryRun ``namespace/name`` to stop; what happened, and the run as last read."""

    async def write() -> tuple[CancelOutcome, Resource]:
        run = await client.get(STORY_RUN, name, namespace)
        if is_terminal_phase(run_phase(run)):
            return CancelOutcome.FINISHED, run
        if run["spec"].get("cancelRequested"):
            return CancelOutcome.ALREADY_REQUESTED, run
        run["spec"]["cancelRequested"] = True
        return CancelOutcome.REQUESTED, await client.update(run)

    return await retry_on_conflict(write, attempts=16)


class ImpulseRuns:
    """The runs of Impulse ``namespace/name`` that target Story ``story``."""

    def __init__(self, client: Client, namespace: str, name: str, story: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.story = story

    def _mine(self, run: Resource) -> bool:
        ref = (run.get("spec") or {}).get("impulseRef") or {}
        return ref.get("name") == self.name and (ref.get("namespace") or self.namespace) == self.namespace

    async def active_runs(self) -> Sequence[str]:
        runs = await self.client.list(STORY_RUN, self.namespace, fields=f"spec.storyRef.name={self.story}")
        return sorted(
            str(run["metadata"]["name"])
            for run in runs
            if self._mine(run) and not is_terminal_phase(run_phase(run))
        )

    async def cancel(self, run: str) -> None:
        await request_cancel(self.client, run, self.namespace)
