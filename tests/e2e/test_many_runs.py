"""50 concurrent runs of a 20-step Story all finish with correct outputs."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from tests.e2e.conftest import Project

from bobrapet.host.embedded import ControlPlane
from bobrapet.host.engine_host import EngineHost

pytestmark = pytest.mark.slow

STEPS = 20
RUNS = 50


def _story(project: Project) -> str:
    lines = []
    for i in range(STEPS):
        # a ladder: step i needs i-1 (and i-2 when it exists), and adds the run's offset
        needs = [f"s{j}" for j in (i - 1, i - 2) if j >= 0]
        n = f"{{{{ steps.s{i - 1}.output.n }}}}" if i else "{{ inputs.start }}"
        needs_text = f"\n      needs: [{', '.join(needs)}]" if needs else ""
        lines.append(
            f"""
    - name: s{i}{needs_text}
      ref: {{name: recorder}}
      with: {{record: "{project.record}", step: s{i}, n: "{n}"}}"""
        )
    return (
        "apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: ladder}\nspec:\n"
        "  steps:" + "".join(lines).replace("\n", "\n  ") + "\n  output:\n"
        f'    n: "{{{{ steps.s{STEPS - 1}.output.n }}}}"\n'
    )


async def _drive(project: Project) -> list[dict[str, object]]:
    plane = ControlPlane(project.home)
    async with plane:
        for document in (project.root / "catalog.yaml", project.root / "story.yaml"):
            for obj in yaml.safe_load_all(document.read_text()):
                if obj["kind"] != "EngramTemplate":
                    obj["metadata"]["namespace"] = "default"
                await plane.client.create(obj)
        await plane.settle()
        for index in range(RUNS):
            await plane.client.create(
                {
                    "apiVersion": "runs.bubustack.io/v1alpha1",
                    "kind": "StoryRun",
                    "metadata": {"name": f"r{index}", "namespace": "default"},
                    "spec": {"storyRef": {"name": "ladder"}, "inputs": {"start": index * 1000}},
                }
            )
        async with EngineHost(plane, workdir=project.root) as host:
            waits = (host.wait_for_run("default", f"r{i}", timeout=240) for i in range(RUNS))
            return list(await asyncio.gather(*waits))


def test_fifty_runs_of_twenty_steps(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("story.yaml", _story(project))
    monkeypatch.chdir(project.root)
    finals = asyncio.run(_drive(project))
    for index, run in enumerate(finals):
        status = run["status"]  # type: ignore[index]
        assert status["phase"] == "Succeeded", status
        assert status["output"] == {"n": index * 1000 + STEPS}
    assert len(project.events()) == 2 * STEPS * RUNS
