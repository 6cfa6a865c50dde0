"""The seam through which oversized StoryRun inputs go to storage.

Contract of an :class:`OffloadInputs` callable: given the namespace and name of the
StoryRun the inputs are for, return the inputs with enough values replaced by storage
references (``{"$bubuStorageRef": ...}``, reference §7) that they fit
``storyrun.max-inline-inputs-size``, writing the blobs under an id derived from them (§7.2:
``inputs/<storyRunName>/`` for the StoryTrigger controller, ``inputs/<ns>/<storyRunName>-<12
hex of the inputs' hash>/`` for a submitter, so the same request offloads to the same
references); inputs that already fit come back unchanged. It raises when storage fails (the
caller retries later). Without one, oversized inputs are rejected with a message naming the
limit.
"""

from __future__ import annotations

from typing import Any, Protocol


class OffloadInputs(Protocol):
    async def __call__(
        self, namespace: str, story_run_name: str, inputs: dict[str, Any]
    ) -> dict[str, Any]: ...
